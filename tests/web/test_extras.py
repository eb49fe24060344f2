"""The web app's server side without a browser: static mounting and POST /v1/tuneforge/validate."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tuneforge.api.app import create_app

GOOD = [{"messages": [{"role": "user", "content": f"Question {i}?"},
                      {"role": "assistant", "content": f"Answer number {i}."}]} for i in range(12)]


@pytest.fixture(scope="module")
def client(settings, base_folder):
    with TestClient(create_app(settings, start_worker=False), base_url="http://127.0.0.1") as c:  # loopback
        yield c


def _jsonl(rows: list) -> bytes:
    return ("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n").encode()


def test_web_app_is_served_without_shadowing_the_api(client):
    page = client.get("/")
    assert page.status_code == 200 and '<script type="module" src="/static/js/app.js">' in page.text
    js = client.get("/static/js/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert client.get("/static/vendor/uplot/LICENSE").status_code == 200
    assert client.get("/health").json()["status"] == "ok"
    missing = client.get("/v1/no-such-endpoint")
    assert missing.status_code == 404 and "error" in missing.json()


def test_validate_reports_findings_by_line_and_stores_nothing(client, settings):
    before = client.get("/v1/files").json()["data"]
    body = _jsonl([GOOD[0], '{"messages": [', {"messages": [{"role": "user", "content": "no answer"}]},
                   *GOOD[1:]])
    r = client.post("/v1/tuneforge/validate", files={"file": ("mine.jsonl", body)})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["ok"] is False and report["file"] == "mine.jsonl"
    by_line = {f["line"]: f["code"] for f in report["findings"]}
    assert by_line[2] == "invalid_json" and by_line[3] == "missing_assistant"
    # The preview shows clean rows only, with the assistant answer as the trained span.
    assert [p["line"] for p in report["preview"]] == [1, 4, 5]
    trained = "".join(s["text"] for s in report["preview"][0]["segments"] if s["trained"])
    assert "Answer number 0." in trained and "Question 0?" not in trained
    assert client.get("/v1/files").json()["data"] == before
    assert not [p for p in (settings.home / "tmp" / "validate").iterdir() if p.is_file()]


def test_validate_a_stored_file_by_id(client):
    stored = client.post("/v1/files", data={"purpose": "fine-tune"},
                         files={"file": ("good.jsonl", _jsonl(GOOD))}).json()
    r = client.post("/v1/tuneforge/validate", data={"file_id": stored["id"]})
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True and r.json()["n_examples"] == 12 and r.json()["file"] == "good.jsonl"


def test_validate_errors_say_what_to_do(client):
    r = client.post("/v1/tuneforge/validate", data={"file_id": "file-nope"})
    assert r.status_code == 404 and "file-nope" in r.json()["error"]["message"]
    r = client.post("/v1/tuneforge/validate", data={"purpose": "fine-tune"})
    assert r.status_code == 400 and "'file'" in r.json()["error"]["message"]
    r = client.post("/v1/tuneforge/validate", data={"method": "magic"},
                    files={"file": ("x.jsonl", _jsonl(GOOD))})
    assert r.status_code == 400 and r.json()["error"]["param"] == "method"
    r = client.post("/v1/tuneforge/validate", data={"model": "no-such-base"},
                    files={"file": ("x.jsonl", _jsonl(GOOD))})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = client.post("/v1/tuneforge/validate", json={"file_id": "file-x"})
    assert r.status_code == 400 and "multipart/form-data" in r.json()["error"]["message"]
