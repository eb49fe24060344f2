"""The terminal workflow against a live server and the tiny model: upload, create, follow, results, models."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading

import httpx
import pytest
from clikit import TUNEFORGE, run_cli, support_rows
from testkit import wait_for, write_jsonl


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    return write_jsonl(tmp_path_factory.mktemp("data") / "train.jsonl", support_rows(10))


def _file_ids(env) -> list[str]:
    return [f["id"] for f in json.loads(run_cli("files", "list", "--json", env=env).out)["data"]]


def test_bad_input_is_refused_with_the_fix(live_server, tmp_path):
    env = live_server.env()
    missing = run_cli("files", "upload", str(tmp_path / "nope.jsonl"), env=env)
    assert missing.code == 1 and "nope.jsonl: no such file" in missing.err

    before = _file_ids(env)
    bad = tmp_path / "bad.jsonl"
    rows = support_rows(10)
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows[:4]) + "{not json\n"
                   + "".join(json.dumps(r) + "\n" for r in rows[4:]))
    refused = run_cli("files", "upload", str(bad), env=env)
    assert refused.code == 1
    assert "failed validation; nothing was uploaded" in refused.err and "tuneforge prepare" in refused.err
    assert "│ 5 " in refused.err  # the findings table names line 5
    assert _file_ids(env) == before

    unknown = run_cli("jobs", "get", "ftjob-doesnotexist", env=env)
    assert unknown.code == 1 and "ftjob-doesnotexist" in unknown.err and "tuneforge jobs list" in unknown.err
    assert "Traceback" not in unknown.err
    not_a_file = run_cli("jobs", "create", "-t", "train_missing.jsonl", "-m", "tiny-llama", env=env)
    assert not_a_file.code == 1 and "no such file and not a file id" in not_a_file.err


def test_files_round_trip(live_server, train_file, tmp_path):
    env = live_server.env()
    up = run_cli("files", "upload", str(train_file), "--json", env=env)
    assert up.code == 0, up.err
    file_id = json.loads(up.out)["id"]
    assert json.loads(run_cli("files", "get", file_id, "--json", env=env).out)["filename"] == "train.jsonl"
    assert file_id in run_cli("files", "list", env=env).out
    got = tmp_path / "copy.jsonl"
    assert run_cli("files", "download", file_id, "-o", str(got), env=env).code == 0
    assert got.read_bytes() == train_file.read_bytes()
    assert run_cli("files", "delete", file_id, env=env).code == 0
    assert file_id not in _file_ids(env)


def test_create_follows_to_a_model_and_reuses_the_upload(live_server, train_file):
    env = live_server.env()
    first = run_cli("jobs", "create", "-t", str(train_file), "-m", "tiny-llama", "--n-epochs", "1",
                    "--suffix", "cli", env=env)
    assert first.code == 0, first.err + first.out
    assert "Created fine-tuning job: ftjob-" in first.out
    assert "Fine-tuning job started" in first.out and "Job complete!" in first.out
    model = re.search(r"Fine-tuned model: (ft:tiny-llama:\S+:cli:\w{8})\s", first.out).group(1)
    job_id = json.loads(run_cli("jobs", "list", "--json", env=env).out)["data"][0]["id"]

    results = run_cli("jobs", "results", job_id, env=env)
    assert results.code == 0 and results.out.startswith("step,train_loss,train_accuracy")
    assert "train loss" in results.out  # the sparkline row
    rows = json.loads(run_cli("jobs", "results", job_id, "--json", env=env).out)
    assert len(rows) == 10 and float(rows[0]["train_loss"]) > 0  # 10 examples, 1 epoch, batch 1

    events = run_cli("jobs", "events", job_id, env=env).out
    assert events.index("Created fine-tuning job") < events.index("The job has successfully completed")
    job = json.loads(run_cli("jobs", "get", job_id, "--json", env=env).out)
    assert job["status"] == "succeeded" and job["fine_tuned_model"] == model

    listed = json.loads(run_cli("models", "list", "--json", env=env).out)
    assert model in [m["id"] for m in listed["fine_tuned"]]
    assert json.loads(run_cli("models", "get", model, "--json", env=env).out)["id"] == model

    n_files = len(_file_ids(env))
    second = run_cli("jobs", "create", "-t", str(train_file), "-m", model, "--no-follow", "--json", env=env)
    assert second.code == 0, second.err
    assert "Reusing file-" in second.err and "already uploaded with identical content" in second.err
    assert json.loads(second.out)["training_file"] == job["training_file"]
    assert len(_file_ids(env)) == n_files  # nothing new uploaded
    cancelled = run_cli("jobs", "cancel", json.loads(second.out)["id"], env=env)
    assert cancelled.code == 0 and "cancelled" in cancelled.out


def interruptible() -> None:
    """Ctrl-C acts on the command, as in a terminal: a SIGINT ignored by whatever started pytest would
    be inherited by the child (Python only turns SIGINT into KeyboardInterrupt where it is not ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_detaches_and_leaves_the_job_running(live_server, train_file):
    env = live_server.env()
    created = json.loads(run_cli("jobs", "create", "-t", str(train_file), "-m", "tiny-llama", "--n-epochs",
                                 "50", "--no-follow", "--json", env=env).out)
    job_id = created["id"]
    job_url = f"{live_server.base_url}/fine_tuning/jobs/{job_id}"
    proc = subprocess.Popen([TUNEFORGE, "jobs", "follow", job_id], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, **env},
                            preexec_fn=interruptible)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        # Ctrl-C as soon as it follows: 50 epochs cannot finish in that moment on any machine.
        wait_for(lambda: lines, what="`jobs follow` to print the job")
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        reader.join(timeout=10)
    finally:
        proc.kill()
    out = "".join(lines)
    assert proc.returncode == 130, out
    assert f"Stopped following; job {job_id} is still" in out
    assert f"tuneforge jobs follow {job_id}" in out and f"tuneforge jobs cancel {job_id}" in out
    assert "Traceback" not in out
    assert httpx.get(job_url).json()["status"] in ("validating_files", "queued", "running")
    run_cli("jobs", "cancel", job_id, env=env)


def test_method_full_trains_every_weight(live_server, train_file, tuneforge_home, tiny_model_dir):
    """`jobs create --method full` (the API's `training_type` extension) saves a whole model whose every
    tensor moved away from the base; the default trains a LoRA adapter and leaves the base alone."""
    from safetensors.torch import load_file

    env = live_server.env()
    created = run_cli("jobs", "create", "-t", str(train_file), "-m", "tiny-llama", "--n-epochs", "1",
                      "--method", "full", "--suffix", "full", env=env)
    assert created.code == 0, created.err + created.out
    job = json.loads(run_cli("jobs", "list", "--json", env=env).out)["data"][0]
    assert job["status"] == "succeeded" and job["training_type"] == "full", job
    final = tuneforge_home / "jobs" / job["id"] / "output" / "final"
    assert not (final / "adapter_config.json").exists()
    tuned = {k: v for f in final.glob("*.safetensors") for k, v in load_file(f).items()}
    base = {k: v for f in tiny_model_dir.glob("*.safetensors") for k, v in load_file(f).items()}
    shared = sorted(set(tuned) & set(base))
    assert len(shared) == len(base), "the full fine-tune must save every base tensor"
    unchanged = [k for k in shared if (tuned[k].float() - base[k].float()).abs().max() == 0]
    assert unchanged == [], f"{len(unchanged)} of {len(shared)} tensors did not train: {unchanged[:5]}"


def test_a_dpo_job_from_the_cli(live_server, tmp_path):
    from dpokit import train_pairs

    env = live_server.env()
    pairs = write_jsonl(tmp_path / "pairs.jsonl", train_pairs(10))
    stray = run_cli("jobs", "create", "-t", str(pairs), "-m", "tiny-llama", "--beta", "0.2", env=env)
    assert stray.code == 1 and "--beta is DPO's setting: add --dpo" in stray.err
    created = run_cli("jobs", "create", "-t", str(pairs), "-m", "tiny-llama", "--dpo", "--beta", "0.2",
                      "--n-epochs", "1", "--no-follow", "--json", env=env)
    assert created.code == 0, created.err
    job = json.loads(created.out)
    assert job["method"]["type"] == "dpo" and job["method"]["dpo"]["hyperparameters"]["beta"] == 0.2
    assert run_cli("jobs", "cancel", job["id"], env=env).code == 0  # its training is not this test's
