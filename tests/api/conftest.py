"""API test fixtures: an app on a fresh home, and a real uvicorn server on a free loopback port."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from pg import database_url, postgres_url  # noqa: F401  (fixtures: SQLite and real PostgreSQL)
from testkit import free_port

from tuneforge.api.app import create_app
from tuneforge.settings import Settings


@dataclass
class LiveServer:
    app: FastAPI
    url: str  # http://127.0.0.1:PORT

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def settings(self) -> Settings:
        return self.app.state.settings


@pytest.fixture
def make_settings(settings, tmp_path) -> Callable[..., Settings]:
    """Settings on a brand-new home (own database and files folder); keyword overrides allowed."""

    def make(**overrides) -> Settings:
        home = Path(tmp_path) / f"home-{len(list(Path(tmp_path).glob('home-*')))}"
        base = dict(home=home, database_url=f"sqlite:///{home / 'tuneforge.db'}")
        return dataclasses.replace(settings, **{**base, **overrides})

    return make


@pytest.fixture
def start_server() -> Iterator[Callable[[Settings], LiveServer]]:
    """Start uvicorn serving `create_app(settings, start_worker=False)` in a thread; stopped at teardown."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app_settings: Settings) -> LiveServer:
        app = create_app(app_settings, start_worker=False)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread))
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return LiveServer(app=app, url=f"http://127.0.0.1:{port}")

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def server(make_settings, start_server) -> LiveServer:
    return start_server(make_settings())
