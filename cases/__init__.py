"""Persistence and application services: tables, CaseService, the hash-chained log, replay."""
