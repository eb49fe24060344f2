"""API keys: open while none exist, required once one does, one project never sees another's files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import openai
import pytest
from openai import OpenAI
from testkit import free_port

from tuneforge.api.auth import bind_refusal, is_loopback_host
from tuneforge.store.keys import KeyStore


def _sdk(server, key: str) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key=key, max_retries=0)


def test_without_keys_any_bearer_or_none_is_accepted(server):
    assert httpx.get(server.base_url + "/files").status_code == 200  # no Authorization at all
    assert httpx.get(server.base_url + "/files", headers={"Authorization": "Basic eDp5"}).status_code == 200
    f = _sdk(server, "sk-whatever").files.create(file=("a.jsonl", b"{}"), purpose="fine-tune")
    assert [x.id for x in _sdk(server, "another-key").files.list()] == [f.id]  # all in one project


def test_projects_are_isolated_and_bad_keys_get_401(server):
    keys = KeyStore(server.app.state.db)
    _, key_a = keys.create("alpha")
    _, key_b = keys.create("beta")
    alpha, beta = _sdk(server, key_a), _sdk(server, key_b)
    fa = alpha.files.create(file=("a.jsonl", b'{"a": 1}\n'), purpose="fine-tune")
    fb = beta.files.create(file=("b.jsonl", b'{"b": 1}\n'), purpose="fine-tune")

    assert [f.id for f in alpha.files.list()] == [fa.id]
    assert [f.id for f in beta.files.list()] == [fb.id]
    for call in (beta.files.retrieve, beta.files.content, beta.files.delete):
        with pytest.raises(openai.NotFoundError) as err:  # 404, never 403: existence is not leaked
            call(fa.id)
        assert err.value.body["message"] == f"No such File object: {fa.id}"
    assert alpha.files.content(fa.id).content == b'{"a": 1}\n'  # beta's delete attempt changed nothing

    with pytest.raises(openai.AuthenticationError) as err:
        _sdk(server, "sk-tf-wrongwrongwrongwrong").files.list()
    assert err.value.code == "invalid_api_key" and err.value.type == "invalid_request_error"
    assert "sk-tf-wro***rong" in err.value.message and "wrongwrongwrong" not in err.value.message
    r = httpx.get(server.base_url + "/files")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(server.url + "/health").status_code == 200  # health stays open


def test_revoked_key_is_refused(server):
    keys = KeyStore(server.app.state.db)
    info, key = keys.create("alpha")
    keys.create("alpha")
    assert _sdk(server, key).files.list().data == []
    keys.revoke(info.id)
    with pytest.raises(openai.AuthenticationError):
        _sdk(server, key).files.list()


def test_every_v1_operation_requires_a_key_once_keys_exist(server):
    """Covers routes other subsystems add: each must depend on `api.deps.current_project`."""
    KeyStore(server.app.state.db).create("alpha")
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    open_ops = []
    for path, ops in paths.items():
        if not path.startswith("/v1/"):
            continue
        url = server.url + path.replace("{", "").replace("}", "")  # every path parameter = its name
        for method in ops:
            if method in ("get", "post", "put", "patch", "delete"):
                r = httpx.request(method.upper(), url, headers={"Authorization": "Bearer sk-tf-nope"})
                if r.status_code != 401:
                    open_ops.append(f"{method.upper()} {path} -> {r.status_code}")
    assert len(paths) > 3 and open_ops == []


def test_network_server_fails_closed_when_its_last_key_is_revoked(server):
    keys = KeyStore(server.app.state.db)
    info, key = keys.create("alpha")
    server.app.state.require_keys = True  # what `tuneforge serve --host 0.0.0.0` sets
    assert _sdk(server, key).files.list().data == []
    keys.revoke(info.id)
    r = httpx.get(server.base_url + "/files", headers={"Authorization": "Bearer anything"})
    assert r.status_code == 401 and "no active API keys" in r.json()["error"]["message"]


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                           ("[::1]", True), ("localhost", True), ("0.0.0.0", False),
                                           ("::", False), ("192.168.1.20", False)])
def test_loopback_detection(host, loopback):
    assert is_loopback_host(host) is loopback
    assert (bind_refusal(host, keys_configured=False) is None) is loopback
    assert bind_refusal(host, keys_configured=True) is None


@pytest.fixture
def cli_home(tmp_path, monkeypatch):
    """Run the real `tuneforge` CLI in-process against a fresh home."""
    from tuneforge.settings import get_settings

    monkeypatch.setenv("TUNEFORGE_HOME", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    monkeypatch.undo()
    get_settings.cache_clear()


def _cli(*args: str):
    from typer.testing import CliRunner

    from tuneforge.cli.main import app

    return CliRunner().invoke(app, list(args))


def test_serve_refuses_a_network_address_without_keys(cli_home):
    r = _cli("serve", "--host", "0.0.0.0", "--port", str(free_port()))
    assert r.exit_code == 1
    assert "refusing to listen on 0.0.0.0" in r.stderr and "tuneforge keys create" in r.stderr
    assert r.exception is None or isinstance(r.exception, SystemExit)


def test_keys_cli_and_serve_end_to_end(cli_home):
    created = _cli("keys", "create", "--project", "alpha", "--json")
    assert created.exit_code == 0, created.output
    made = json.loads(created.stdout)
    listed = _cli("keys", "list", "--json")
    assert [k["project"] for k in json.loads(listed.stdout)] == ["alpha"] and made["key"] not in listed.stdout
    assert _cli("keys", "revoke", "key_nope").exit_code == 1

    port, log_path = free_port(), cli_home / "serve.log"
    env = {**os.environ, "TUNEFORGE_HOME": str(cli_home), "HF_HUB_OFFLINE": "1"}
    env.pop("TUNEFORGE_DATABASE_URL", None)
    with log_path.open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "tuneforge.cli.main", "serve", "--port", str(port),
                                 "--no-worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        client = OpenAI(base_url=base + "/v1", api_key=made["key"], max_retries=0)
        f = client.files.create(file=("a.jsonl", b"{}"), purpose="fine-tune")
        assert [x.id for x in client.files.list()] == [f.id]
        with pytest.raises(openai.AuthenticationError):
            OpenAI(base_url=base + "/v1", api_key="sk-other", max_retries=0).files.list()
        assert _cli("keys", "revoke", made["id"]).exit_code == 0
        # No active keys left: the loopback server is open again, in the default project.
        assert OpenAI(base_url=base + "/v1", api_key="x", max_retries=0).files.list().data == []
    finally:
        proc.terminate()
        proc.wait(timeout=30)
