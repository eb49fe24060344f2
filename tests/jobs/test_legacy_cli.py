"""The tutorials' 0.x CLI (`openai==0.28.1`, in its own venv) against `tuneforge serve`.

The venv comes from the session fixture `openai028` (tests/conftest.py).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
from pathlib import Path

from jobkit import QUESTIONS


def _run(cli: Path, args: list[str], base_url: str, cwd: Path, timeout: float = 300) -> str:
    env = {**os.environ, "OPENAI_API_BASE": base_url, "OPENAI_API_KEY": "sk-anything"}
    proc = subprocess.run(
        [str(cli), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, f"openai {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_legacy_cli_prepare_create_follow_list_results(openai028, job_home, spawn, tmp_path):
    # The tutorials say `-m davinci`; this home maps that alias to the tiny test model, so it trains fast.
    (job_home / "config.toml").write_text('[tuneforge.aliases]\ndavinci = "tiny-llama"\n')
    server = spawn("serve", job_home)
    data = tmp_path / "support.jsonl"
    data.write_text(
        "".join(
            json.dumps({"prompt": q, "completion": f"Answer {i}: see the help page"}) + "\n"
            for i, q in enumerate(QUESTIONS[:10])
        )
    )

    out = _run(
        openai028, ["tools", "fine_tunes.prepare_data", "-f", str(data), "-q"], server.base_url, tmp_path
    )
    prepared = tmp_path / "support_prepared.jsonl"
    assert prepared.is_file(), out

    out = _run(
        openai028,
        ["api", "fine_tunes.create", "-t", str(prepared), "-m", "davinci"],
        server.base_url,
        tmp_path,
        timeout=400,
    )
    job_id = re.search(r"Created fine-tune: (ft-\w+)", out).group(1)
    assert re.search(r"Uploaded file from .*support_prepared.jsonl: file-\w+", out)
    assert "Job complete! Status: succeeded" in out, out
    model = re.search(r"completions.create -m (\S+) -p", out).group(1)
    assert re.match(r"^davinci:ft-personal-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d$", model), model
    for message in (
        "Fine-tune costs $0.00",
        "Fine-tune enqueued. Queue number: 0",
        "Fine-tune started",
        "Completed epoch 1/4",
        f"Uploaded model: {model}",
        "Fine-tune succeeded",
    ):
        assert re.search(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] " + re.escape(message), out), (message, out)
    assert "Step 1/" not in out  # the 0.x stream never showed per-step metrics

    follow = _run(openai028, ["api", "fine_tunes.follow", "-i", job_id], server.base_url, tmp_path)
    assert f"Created fine-tune: {job_id}" in follow and "Job complete! Status: succeeded" in follow

    listed = json.loads(_run(openai028, ["api", "fine_tunes.list"], server.base_url, tmp_path))
    (job,) = listed["data"]
    assert job["id"] == job_id and job["object"] == "fine-tune" and job["status"] == "succeeded"
    assert job["fine_tuned_model"] == model and job["model"] == "davinci"
    assert job["hyperparams"]["n_epochs"] == 4 and job["hyperparams"]["prompt_loss_weight"] == 0.01
    assert job["training_files"][0]["filename"].endswith("support_prepared.jsonl")
    assert job["result_files"][0]["filename"] == "compiled_results.csv"

    results = _run(openai028, ["api", "fine_tunes.results", "-i", job_id], server.base_url, tmp_path)
    rows = list(csv.reader(io.StringIO(results.strip())))
    assert rows[0][:4] == ["step", "elapsed_tokens", "elapsed_examples", "training_loss"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 41))  # 10 examples x 4 epochs, batch 1


def test_legacy_cli_trains_a_two_example_file_like_seed_003(openai028, job_home, spawn, tmp_path):
    # Seed tutorial 003: two prompt/completion rows, prepare_data, `fine_tunes.create -m davinci`.
    (job_home / "config.toml").write_text('[tuneforge.aliases]\ndavinci = "tiny-llama"\n')
    server = spawn("serve", job_home)
    data = tmp_path / "test.jsonl"
    rows = [
        {"prompt": "请使用golang写一个冒泡排序的算法", "completion": "本地已经存在，请换其他问题"},
        {"prompt": "请告诉我XX公司发展的怎么样了", "completion": "融资款已到，已步入正轨"},
    ]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    _run(openai028, ["tools", "fine_tunes.prepare_data", "-f", str(data), "-q"], server.base_url, tmp_path)
    prepared = tmp_path / "test_prepared.jsonl"
    assert prepared.is_file()

    out = _run(openai028, ["api", "fine_tunes.create", "-t", str(prepared), "-m", "davinci"],
               server.base_url, tmp_path, timeout=400)
    assert "Job complete! Status: succeeded" in out, out
    assert re.search(r"completions.create -m davinci:ft-personal-\S+ -p", out), out
    assert "invalid_n_examples" not in out and "at least" not in out
