"""CLI test fixtures: the real `tuneforge` command against a real `tuneforge serve` on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clikit import (
    Server,
    start_server,
    stop_server,
)


@pytest.fixture(scope="session")
def live_server(tuneforge_home, tiny_model, tmp_path_factory) -> Iterator[Server]:
    """`tuneforge serve` on the session's home (where the tiny model is registered)."""
    server = start_server(tuneforge_home, tmp_path_factory.mktemp("server") / "serve.log")
    yield server
    stop_server(server)
