"""Shared test builders: services and engines, actors, an HTTP client per role, database
fixtures, live servers. Test modules import from here, never from one another."""
