"""FastAPI dependencies shared by the routes: settings, database, the caller's project.

Every /v1 route must depend on `current_project` (directly or through a route/router dependency): it
is what enforces API keys and scopes each request to one project.
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials

from tuneforge.api.auth import (
    DEFAULT_PROJECT,
    authenticate,
    bearer_scheme,
    bearer_secret,
    reject_nul_bytes,
    reject_nul_in_json,
)
from tuneforge.settings import Settings
from tuneforge.store.db import Database
from tuneforge.store.files import FileStore

__all__ = ["DEFAULT_PROJECT", "current_project", "get_db", "get_file_store", "get_settings_dep"]


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_db(request: Request) -> Database:
    return request.app.state.db


def get_file_store(request: Request) -> FileStore:
    """The app's file store (files metadata + blobs), created once per app."""
    store = getattr(request.app.state, "file_store", None)
    if store is None:
        store = FileStore.from_settings(request.app.state.settings, request.app.state.db)
        request.app.state.file_store = store
    return store


async def current_project(
    request: Request, _credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)
) -> str:
    """The project of the caller's API key, as `api/guard.py` authenticated it before the body was read
    (401 there if keys exist and the key is missing or wrong; `default` while no keys exist). Also
    refuses NUL characters in the URL or a JSON body (400) for every route: PostgreSQL cannot store
    them and would otherwise answer with a 500."""
    project = getattr(request.state, "project", None)
    if project is None:  # an app without the guard (never in tuneforge itself): authenticate here
        caller = await run_in_threadpool(authenticate, request.app.state, bearer_secret(request.headers),
                                         require_keys=getattr(request.app.state, "require_keys", False))
        project = request.state.project = caller.project
    reject_nul_bytes(request)
    await reject_nul_in_json(request)
    return project
