"""Pure workflow layer: definitions, the shared state machine, decide() and the event fold.

Nothing here imports FastAPI, SQLModel or any other layer of ours.
"""
