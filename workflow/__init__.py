"""Pure workflow layer: definitions, the shared state machine, decide(), the event fold, the hash
chain's canonical bytes and the error roots (domain and configuration).

Nothing here imports FastAPI, SQLModel or any other layer of ours.
"""
