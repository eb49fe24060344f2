"""A small held-out file, a LoRA adapter on the tiny model trained on it (so it must win), and two live
API servers: an open one serving that adapter as FT_ID, and a keyed one that refuses /v1/completions
(as some OpenAI-compatible servers do), serving the tiny base."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from evalkit import FT_ID, ROWS, SYSTEM
from testkit import UvicornThread


@pytest.fixture(scope="session")
def heldout(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("eval") / "heldout.jsonl"
    lines = [json.dumps({"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q},
                                      {"role": "assistant", "content": a}]}, ensure_ascii=False)
             for q, a in ROWS]
    lines.append(json.dumps({"prompt": "Shop city ->", "completion": " Lisbon"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tuned_adapter(tmp_path_factory, tiny_model, heldout, settings) -> Path:
    """A LoRA adapter trained to memorise `heldout`, saved as a tuneforge model folder."""
    import torch
    from peft import LoraConfig, get_peft_model

    from tuneforge.data.encode import encode_example
    from tuneforge.models.loading import load_base_model, load_tokenizer

    torch.manual_seed(0)
    tokenizer = load_tokenizer(tiny_model, settings)
    model = get_peft_model(load_base_model(tiny_model, settings),
                           LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "o_proj"]))
    model.train()
    rows = [json.loads(line) for line in heldout.read_text().splitlines()]
    batch = [encode_example(r, tokenizer, 256) for r in rows]
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    for _ in range(25):
        for e in batch:
            out = model(input_ids=torch.tensor([e.input_ids]), labels=torch.tensor([e.labels]))
            out.loss.backward()
            optim.step()
            optim.zero_grad()
    folder = tmp_path_factory.mktemp("models") / "tuned"
    model.save_pretrained(folder)
    (folder / "tuneforge_model.json").write_text(json.dumps({"base_model": tiny_model, "method": "lora"}))
    return folder


def _refuse_completions(app):
    """The app, except that /v1/completions answers 404 in OpenAI's shape (a chat-only server)."""
    from starlette.responses import JSONResponse

    async def wrapped(scope, receive, send):
        if scope["type"] == "http" and scope["path"].rstrip("/") == "/v1/completions":
            error = {"message": "Unknown route /v1/completions.", "type": "invalid_request_error",
                     "param": None, "code": "not_found"}
            await JSONResponse({"error": error}, status_code=404)(scope, receive, send)
            return
        await app(scope, receive, send)

    return wrapped


class Live:
    """The real API app under uvicorn in a thread, on a free port."""

    def __init__(self, settings, folders: dict[str, Path], refuse_completions: bool = False):
        from tuneforge.api.app import create_app
        from tuneforge.serving.resolver import static_resolver

        self.app = create_app(settings, start_worker=False)
        self.app.state.engine_options = {"resolvers": [static_resolver(folders)]}
        self.uvicorn = UvicornThread(_refuse_completions(self.app) if refuse_completions else self.app)
        self.base_url = self.uvicorn.url + "/v1"

    def stop(self) -> None:
        self.uvicorn.stop()


def _fresh_db(settings, tmp_path_factory, name: str):
    folder = tmp_path_factory.mktemp(name)
    return dataclasses.replace(settings, database_url=f"sqlite:///{folder / 'db.sqlite'}")


@pytest.fixture(scope="session")
def open_server(settings, tiny_model, tuned_adapter, tmp_path_factory):
    """No keys; serves the tiny base and the trained adapter as FT_ID."""
    server = Live(_fresh_db(settings, tmp_path_factory, "eval-db-open"), {FT_ID: tuned_adapter})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def keyed_server(settings, tiny_model, tmp_path_factory):
    """One API key (`server.key`); serves the tiny base; refuses /v1/completions."""
    from tuneforge.store.keys import KeyStore

    server = Live(_fresh_db(settings, tmp_path_factory, "eval-db-keyed"), {}, refuse_completions=True)
    _, server.key = KeyStore(server.app.state.db).create("default")
    yield server
    server.stop()
