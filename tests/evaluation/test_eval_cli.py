"""`tuneforge eval` as a user runs it: the table, the report file, --json, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TUNEFORGE = str(Path(sys.executable).with_name("tuneforge"))


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([TUNEFORGE, "eval", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200"})


def test_eval_prints_the_comparison_and_writes_the_report(tuned_adapter, tiny_model, heldout, tmp_path):
    report = tmp_path / "report.html"
    proc = _run("-m", str(tuned_adapter), "-f", str(heldout), "--compare", tiny_model, "-o", str(report),
                "--max-new-tokens", "16")
    assert proc.returncode == 0, proc.stderr
    assert "ROUGE-L" in proc.stdout and "perplexity" in proc.stdout and tiny_model in proc.stdout
    assert f"Best ROUGE-L: {tuned_adapter}" in proc.stdout.replace("\n", "")
    assert f"HTML report: {report}" in proc.stdout
    assert "车架保修两年。" in report.read_text(encoding="utf-8")

    as_json = _run("-m", str(tuned_adapter), "-f", str(heldout), "-c", tiny_model, "--json", "-n", "2",
                   "--max-new-tokens", "8", "-o", str(tmp_path / "r2.html"))
    data = json.loads(as_json.stdout)
    assert [m["model"] for m in data["models"]] == [str(tuned_adapter), tiny_model]
    assert len(data["references"]) == 2 and data["report"].endswith("r2.html")


def test_eval_bad_input_is_one_line(tiny_model, tmp_path):
    missing = _run("-m", tiny_model, "-f", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1
    expected = f"error: {tmp_path / 'nope.jsonl'}: no such file; pass a held-out JSONL file with -f"
    assert missing.stderr.strip() == expected
    heldout = tmp_path / "h.jsonl"
    heldout.write_text('{"prompt": "a", "completion": "b"}\n')
    unknown = _run("-m", "ft:tiny-llama:personal::zzzzzzzz", "-f", str(heldout))
    assert unknown.returncode == 1 and "tuneforge models list" in unknown.stderr
    assert "Traceback" not in unknown.stderr + missing.stderr
