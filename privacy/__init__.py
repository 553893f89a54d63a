"""Personal data protected by design, the pure half: markers that commit to a value, the
fields of an event that are personal, sealing values under a case's data key, and the keys
that wrap data keys. No database: the tables and services are in ``cases/personal.py`` and
``cases/erasure.py``; docs/privacy.md says what is personal and what is kept.
"""
