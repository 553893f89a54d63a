"""ASGI entry point for uvicorn workers: `uvicorn --factory api.main:create_app`."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app as _create_app


def create_app() -> FastAPI:
    return _create_app(freeze_heap=True)
