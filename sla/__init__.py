"""Pure SLA layer: business calendars, deadline arithmetic, timer plans and the sweep ticker.

Nothing here imports FastAPI, SQLModel or the ``cases``/``api`` layers; it may use ``workflow``.
"""
