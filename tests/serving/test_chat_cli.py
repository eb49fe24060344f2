"""`tuneforge complete` and `tuneforge chat` in a subprocess, as clients of a live server's /v1 API."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Live
from servekit import FT_ID
from testkit import free_port
from tiny_model import TINY_NAME

TUNEFORGE = str(Path(sys.executable).with_name("tuneforge"))


def _run(args: list[str], stdin: str = "", **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return subprocess.run([TUNEFORGE, *args], input=stdin, capture_output=True, text=True,
                          env={**clean, "HF_HUB_OFFLINE": "1", **env}, timeout=300)


def test_complete_prints_prompt_and_completion(live):
    out = _run(["complete", "-m", FT_ID, "-p", "Order status ->", "-M", "4", "-t", "0", "-n", "1",
                "--base-url", live.base_url])
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Order status ->") and len(out.stdout.strip()) > len("Order status ->")


def test_chat_is_multi_turn_with_reset(live):
    out = _run(["chat", "-m", FT_ID, "-s", "Be brief.", "-M", "4", "-t", "0"],
               stdin="hello\nhello\n/reset\nhello\n", OPENAI_BASE_URL=live.base_url)
    assert out.returncode == 0, out.stderr
    replies = [line.split("assistant>")[1] for line in out.stdout.splitlines() if "assistant>" in line]
    assert len(replies) == 3 and all(r.strip() for r in replies)
    assert "conversation cleared" in out.stderr
    # Greedy: after /reset the same question gets the first answer again; with history it did not.
    assert replies[2] == replies[0] != replies[1]


def test_unknown_model_is_one_line_error(live):
    out = _run(["complete", "-m", "ft:nope:personal:x:00000000", "-p", "hi", "--base-url", live.base_url])
    assert out.returncode == 1
    assert "does not exist" in out.stderr and "Traceback" not in out.stderr


def test_no_server_says_how_to_start_one():
    url = f"http://127.0.0.1:{free_port()}/v1"
    for args in (["chat", "-m", TINY_NAME], ["complete", "-m", TINY_NAME, "-p", "hi"]):
        out = _run([*args, "--base-url", url], stdin="hi\n")
        assert out.returncode == 1, out.stdout
        assert "tuneforge serve" in out.stderr and url in out.stderr and "Traceback" not in out.stderr


@pytest.fixture(scope="module")
def keyed(settings, tiny_model, tmp_path_factory):
    """A server with one API key configured: only its holder may chat."""
    from tuneforge.store.keys import KeyStore

    db_dir = tmp_path_factory.mktemp("keyed-db")
    server = Live(dataclasses.replace(settings, database_url=f"sqlite:///{db_dir / 'db.sqlite'}"), {})
    _, secret = KeyStore(server.app.state.db).create("default")
    yield server, secret
    server.stop()


def test_keys_are_the_servers_keys(keyed):
    server, secret = keyed
    for key in (None, "sk-wrong"):
        extra = {"OPENAI_API_KEY": key} if key else {}
        out = _run(["complete", "-m", TINY_NAME, "-p", "hi", "-M", "2", "--base-url", server.base_url],
                   **extra)
        assert out.returncode == 1 and "HTTP 401" in out.stderr and "--api-key" in out.stderr, out.stderr
    out = _run(["complete", "-m", TINY_NAME, "-p", "hi", "-M", "2", "-t", "0", "--base-url",
                server.base_url, "--api-key", secret])
    assert out.returncode == 0, out.stderr
