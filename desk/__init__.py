"""A desk: one configuration directory of workflows, policies, calendars, intake rules and
scenarios, loaded and cross-checked (pure: no database, no web); and the packaged default desk."""
