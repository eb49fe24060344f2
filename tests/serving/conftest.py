"""Serving fixtures: a real PEFT LoRA adapter and a full fine-tune of the tiny model, and a live uvicorn
server (one per session: loading is the slow part) that serves them under fine-tuned ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from servekit import FT2_ID, FT_ID, FULL_ID
from testkit import UvicornThread, random_full_fine_tune, random_lora


def _make_adapter(tiny_model_dir: Path, folder: Path, seed: int) -> Path:
    return random_lora(tiny_model_dir, folder, base_model="tiny-llama", seed=seed, rank=4, alpha=32,
                       targets=["q_proj", "v_proj", "o_proj"])


@pytest.fixture(scope="session")
def adapter_dir(tiny_model, tiny_model_dir, tmp_path_factory) -> Path:
    return _make_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter-1"), seed=1)


@pytest.fixture(scope="session")
def adapter2_dir(tiny_model, tiny_model_dir, tmp_path_factory) -> Path:
    return _make_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter-2"), seed=2)


@pytest.fixture(scope="session")
def full_dir(tiny_model, tiny_model_dir, tmp_path_factory) -> Path:
    return random_full_fine_tune(tiny_model_dir, tmp_path_factory.mktemp("full-ft"), base_model="tiny-llama",
                                 seed=3)


@pytest.fixture(scope="session")
def model_folders(adapter_dir, adapter2_dir, full_dir) -> dict[str, Path]:
    return {FT_ID: adapter_dir, FT2_ID: adapter2_dir, FULL_ID: full_dir}


class Live:
    def __init__(self, settings, engine_options: dict):
        from tuneforge.api.app import create_app

        self.app = create_app(settings, start_worker=False)
        self.app.state.engine_options = engine_options
        self.uvicorn = UvicornThread(self.app)
        self.url = self.uvicorn.url
        self.base_url = self.url + "/v1"

    @property
    def engine(self):
        return self.app.state.engine

    def stop(self) -> None:
        self.uvicorn.stop()


@pytest.fixture(scope="session")
def live(settings, tiny_model, model_folders, tmp_path_factory):
    """The API on a fresh database (the session home, where the tiny base is registered), serving the
    tiny base and the fine-tuned ids above."""
    import dataclasses

    from tuneforge.serving.resolver import static_resolver

    db_dir = tmp_path_factory.mktemp("serve-db")
    app_settings = dataclasses.replace(settings, database_url=f"sqlite:///{db_dir / 'db.sqlite'}")
    server = Live(app_settings, {"resolvers": [static_resolver(model_folders)]})
    yield server
    server.stop()


@pytest.fixture
def client(live):
    from openai import OpenAI

    return OpenAI(base_url=live.base_url, api_key="sk-anything", max_retries=0, timeout=120)
