"""The ways in and the composition root: FastAPI app, auth, problem+json, settings, CLI."""
