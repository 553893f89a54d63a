"""The case write path and its reads: CaseService (the facade), the command path, queries, the
projection, workflow versions, triage and routing, mediators, merchant logs and the timer sweep."""
