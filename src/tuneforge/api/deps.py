"""FastAPI dependencies shared by the routes: settings, database, the caller's project."""

from __future__ import annotations

from fastapi import Request

from tuneforge.settings import Settings
from tuneforge.store.db import Database

DEFAULT_PROJECT = "default"


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_db(request: Request) -> Database:
    return request.app.state.db


def current_project(request: Request) -> str:
    """The project the caller's API key belongs to. With no keys configured every caller is in the
    default project (auth.py replaces this when keys exist)."""
    return getattr(request.state, "project", DEFAULT_PROJECT)
