"""Scripts kept with the project: the outside verifier and the triage data writer."""
