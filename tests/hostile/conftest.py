"""One live tuneforge server on a fresh home (tiny base registered, no job worker), shared by the hostile
requests of this folder: each case meets the same server the cases before it left behind."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import httpx
import pytest
from testkit import UvicornThread


@dataclasses.dataclass
class Target:
    url: str
    home: Path
    sandbox: Path  # the folder around the home: nothing may appear here but the home itself
    training_file: str  # a valid uploaded training file, so each job case fails on its own field only

    @property
    def base_url(self) -> str:
        return self.url + "/v1"


@pytest.fixture(scope="session")
def target(settings, tiny_model, tmp_path_factory):
    from tuneforge.api.app import create_app

    sandbox = tmp_path_factory.mktemp("hostile")
    home = sandbox / "home"
    home.mkdir()
    shutil.copy(settings.registry_path, home / "bases.json")
    app_settings = dataclasses.replace(
        settings,
        home=home,
        database_url=f"sqlite:///{home / 'db.sqlite'}",
        max_request_bytes=16 * 1024 * 1024,
    )
    app = create_app(app_settings, start_worker=False)
    server = UvicornThread(app)
    url = server.url
    rows = b"".join(
        b'{"messages": [{"role": "user", "content": "hi %d"}, {"role": "assistant", '
        b'"content": "hello"}]}\n' % i
        for i in range(12)
    )
    uploaded = httpx.post(
        url + "/v1/files", data={"purpose": "fine-tune"}, files={"file": ("train.jsonl", rows)}, timeout=60
    )
    assert uploaded.status_code == 200, uploaded.text
    warm = httpx.post(
        url + "/v1/chat/completions",
        timeout=300,
        json={"model": tiny_model, "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert warm.status_code == 200, warm.text  # the model is loaded before any timing is taken
    yield Target(url=url, home=home, sandbox=sandbox, training_file=uploaded.json()["id"])
    server.stop()
