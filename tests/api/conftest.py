"""API test fixtures: an app on a fresh home, and a real uvicorn server on a free loopback port."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from pg import database_url, postgres_url  # noqa: F401  (fixtures: SQLite and real PostgreSQL)
from testkit import UvicornThread

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
    running: list[UvicornThread] = []

    def start(app_settings: Settings) -> LiveServer:
        app = create_app(app_settings, start_worker=False)
        running.append(UvicornThread(app))
        return LiveServer(app=app, url=running[-1].url)

    yield start
    for server in running:
        server.stop()


@pytest.fixture
def server(make_settings, start_server) -> LiveServer:
    return start_server(make_settings())
