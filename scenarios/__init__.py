"""Scenario tests of a desk's rules: the file format (pure) and the runner (a throw-away database)."""
