"""POST /v1/tuneforge/validate takes models by name only: no download of a hub id, no path probing."""

from __future__ import annotations

import json

import pytest
from jobkit import chat_rows


@pytest.mark.parametrize("model", ["no-such-model", "someorg/some-model", "/etc", "/no/such/dir"])
def test_unknown_names_hub_ids_and_paths_get_the_same_404(inproc, model):
    data = "".join(json.dumps(r) + "\n" for r in chat_rows(2)).encode()
    r = inproc.http.post("/v1/tuneforge/validate", files={"file": ("t.jsonl", data)}, data={"model": model})
    assert r.status_code == 404, r.text
    error = r.json()["error"]
    assert error["param"] == "model" and error["code"] == "model_not_found"
    assert "tuneforge models add NAME PATH" in error["message"]
    assert error["message"].replace(model, "NAME_SENT") == (
        "The model 'NAME_SENT' does not exist. Pass a base model name (GET /v1/models lists them), leave "
        "'model' out, or register one on the server with `tuneforge models add NAME PATH`.")


def test_a_registered_name_checks_the_file(inproc):
    data = "".join(json.dumps(r) + "\n" for r in chat_rows(2)).encode()
    r = inproc.http.post("/v1/tuneforge/validate", files={"file": ("t.jsonl", data)},
                         data={"model": "tiny-llama"})
    assert r.status_code == 200, r.text
    assert r.json()["object"] == "tuneforge.validation" and r.json()["file"] == "t.jsonl"
