"""The FastAPI application: OpenAI-compatible `/v1` API plus the web app at `/`."""

from __future__ import annotations

import importlib
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tuneforge import __version__
from tuneforge.api.errors import install_error_handlers
from tuneforge.api.guard import RequestGuard
from tuneforge.settings import Settings, get_settings
from tuneforge.store.db import Database

# Each module exposes `router` (an APIRouter with paths under /v1). Add new endpoint families here.
ROUTER_MODULES = (
    "files",
    "fine_tuning",
    "legacy_fine_tunes",
    "models",
    "checkpoint_permissions",
    "chat",
    "completions",
    "tuneforge_extras",
    "graders",
)


def _include_routers(app: FastAPI) -> None:
    for name in ROUTER_MODULES:
        try:
            module = importlib.import_module(f"tuneforge.api.routes.{name}")
        except ModuleNotFoundError as exc:  # an endpoint family that is not written yet
            if exc.name != f"tuneforge.api.routes.{name}":
                raise
            continue
        app.include_router(module.router, prefix="/v1")


def create_app(settings: Settings | None = None, *, start_worker: bool = True) -> FastAPI:
    settings = settings or get_settings()
    db = Database.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        db.init_schema()
        hooks = list(app.state.startup_hooks)
        for hook in hooks:
            await hook(app)
        try:
            yield
        finally:
            for hook in reversed(app.state.shutdown_hooks):
                await hook(app)
            db.dispose()

    app = FastAPI(title="tuneforge", version=__version__, lifespan=lifespan,
                  description="OpenAI-compatible fine-tuning and inference for open models.")
    app.state.settings = settings
    app.state.db = db
    app.state.start_worker = start_worker
    # Subsystems (job worker, inference engine, web app) register async hooks here.
    app.state.startup_hooks = []
    app.state.shutdown_hooks = []
    install_error_handlers(app)
    # Host, Origin, size and key checks before any route or body parsing (api/guard.py).
    app.add_middleware(RequestGuard, settings=settings)

    @app.get("/health", tags=["health"])
    @app.get("/v1/health", include_in_schema=False)
    def health() -> dict:
        return {"status": "ok", "version": __version__}

    _include_routers(app)
    importlib.import_module("tuneforge.jobs.inprocess").install(app)  # job worker (honours start_worker)
    importlib.import_module("tuneforge.web").mount_web(app)  # web app at / (after /v1, never shadowing it)
    return app
