"""HTTP only: the FastAPI app over the engine runtime/ builds, routes, auth, problem+json, schemas."""
