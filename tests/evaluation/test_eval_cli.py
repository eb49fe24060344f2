"""`tuneforge eval` as a user runs it against live servers: the table, the report, --json, a model on a
second server, a chat-only server, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from evalkit import FT_ID
from testkit import free_port

TUNEFORGE = str(Path(sys.executable).with_name("tuneforge"))


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return subprocess.run([TUNEFORGE, "eval", *args], capture_output=True, text=True, timeout=600,
                          env={**clean, "COLUMNS": "250", **env})


def test_eval_compares_models_on_two_servers(open_server, keyed_server, tiny_model, heldout, tmp_path):
    report = tmp_path / "report.html"
    other = f"{tiny_model}@{keyed_server.base_url}"
    # The open server takes any key, so the keyed server's key serves both.
    proc = _run("-m", FT_ID, "-f", str(heldout), "--compare", other, "-o", str(report),
                "--max-new-tokens", "16", "--api-key", keyed_server.key, OPENAI_BASE_URL=open_server.base_url)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.replace("\n", "")
    assert "ROUGE-L" in out and "perplexity" in out and tiny_model in out and "n/a" in out
    assert f"{tiny_model}: loss, perplexity and token accuracy unavailable ({keyed_server.base_url}" \
           "/completions answered HTTP 404" in out
    assert f"HTML report: {report}" in out
    assert "ROUGE-L, English (3)" in out and "ROUGE-L, Chinese (1)" in out
    html = report.read_text(encoding="utf-8")
    assert "车架保修两年。" in html and "unavailable" in html and keyed_server.base_url in html

    as_json = _run("-m", FT_ID, "-f", str(heldout), "-c", other, "--json", "-n", "2", "--max-new-tokens",
                   "8", "-o", str(tmp_path / "r2.html"), "--base-url", open_server.base_url,
                   "--api-key", "sk-any", "--compare-key", keyed_server.key)  # each server its own key
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    tuned, base = data["models"]
    assert (tuned["model"], tuned["base_url"]) == (FT_ID, open_server.base_url) and tuned["loss"] > 0
    assert (base["model"], base["base_url"], base["loss"]) == (tiny_model, keyed_server.base_url, None)
    assert len(data["references"]) == 2 and data["report"].endswith("r2.html")


def test_eval_errors_are_one_line(keyed_server, tiny_model, heldout, tmp_path):
    missing = _run("-m", tiny_model, "-f", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1
    assert missing.stderr.strip() == \
        f"error: {tmp_path / 'nope.jsonl'}: no such file; pass a held-out JSONL file with -f"
    down_url = f"http://127.0.0.1:{free_port()}/v1"
    down = _run("-m", tiny_model, "-f", str(heldout), "--base-url", down_url)
    assert down.returncode == 1
    assert f"error: no server answers at {down_url}; start one with `tuneforge serve`" in down.stderr
    wrong_key = _run("-m", tiny_model, "-f", str(heldout), "--base-url", keyed_server.base_url,
                     OPENAI_API_KEY="sk-wrong")
    assert wrong_key.returncode == 1 and "HTTP 401" in wrong_key.stderr and "--api-key" in wrong_key.stderr
    no_file_id = _run("-m", tiny_model, "-f", "file-nosuchfile", "--base-url", keyed_server.base_url,
                      "--api-key", keyed_server.key)
    assert no_file_id.returncode == 1
    assert f"error: file-nosuchfile: no such file on {keyed_server.base_url}" in no_file_id.stderr
    for proc in (missing, down, wrong_key, no_file_id):
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2
