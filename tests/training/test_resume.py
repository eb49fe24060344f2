"""Kill, cancel and resume: a resumed run must end exactly where an uninterrupted one does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from trainkit import base_config, run_cli


def _final_weights(out) -> dict[str, torch.Tensor]:
    return load_file(out / "final" / "adapter_model.safetensors")


def _assert_same_model(a, b) -> None:
    wa, wb = _final_weights(a), _final_weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)


def _start(config: dict, workdir) -> subprocess.Popen:
    path = workdir / "train_config.json"
    path.write_text(json.dumps(config))
    return subprocess.Popen([sys.executable, "-m", "tuneforge.training", "--config", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ})


def _read_until(proc: subprocess.Popen, predicate) -> list[dict]:
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if predicate(events[-1]):
            break
    return events


def test_resume_after_kill_matches_uninterrupted(tiny_model, chat_file, tmp_path):
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    ref_dir.mkdir()
    run_dir.mkdir()
    rc, ref_events, err = run_cli(base_config(tiny_model, chat_file, ref_dir / "out"), ref_dir)
    assert rc == 0, err

    cfg = base_config(tiny_model, chat_file, run_dir / "out")
    proc = _start(cfg, run_dir)
    _read_until(proc, lambda e: e["type"] == "checkpoint")  # epoch 1 done
    proc.kill()  # SIGKILL: no chance to clean up
    proc.wait()
    rc, events, err = run_cli({**cfg, "resume": True}, run_dir)
    assert rc == 0, err
    assert events[0]["resumed_from_step"] >= 3
    assert events[-1]["type"] == "completed"
    # The checkpoints on disk are announced again: the killed run may never have reported the last one.
    restored = [e for e in events if e.get("restored")]
    assert restored and restored[-1]["step"] == events[0]["resumed_from_step"]
    assert all(Path(e["path"]).is_dir() and "train_loss" in e["metrics"] for e in restored)
    _assert_same_model(ref_dir / "out", run_dir / "out")
    ref_loss = [e["train_loss"] for e in ref_events if e["type"] == "step"]
    resumed = [e for e in events if e["type"] == "step"]
    assert [e["train_loss"] for e in resumed] == ref_loss[-len(resumed):]
    # results.csv has every step exactly once, as if nothing had happened.
    lines = (run_dir / "out" / "results.csv").read_text().splitlines()[1:]
    assert [int(line.split(",")[0]) for line in lines] == list(range(1, 10))


def test_sigterm_stops_between_steps_and_resumes(tiny_model, chat_file, tmp_path):
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    ref_dir.mkdir()
    run_dir.mkdir()
    cfg_ref = base_config(tiny_model, chat_file, ref_dir / "out", batch_size=2)
    rc, _, err = run_cli(cfg_ref, ref_dir)
    assert rc == 0, err
    cfg = base_config(tiny_model, chat_file, run_dir / "out", batch_size=2)
    proc = _start(cfg, run_dir)
    _read_until(proc, lambda e: e["type"] == "step" and e["step"] == 8)  # mid-epoch 2
    proc.send_signal(signal.SIGTERM)
    rest = [json.loads(line) for line in proc.stdout]
    assert proc.wait(timeout=30) == 0
    assert rest[-1]["type"] == "cancelled" and rest[-1]["checkpoint"]
    stopped_at = rest[-1]["step"]
    assert 8 <= stopped_at < 18
    rc, events, err = run_cli({**cfg, "resume": True}, run_dir)
    assert rc == 0, err
    assert events[0]["resumed_from_step"] == stopped_at
    _assert_same_model(ref_dir / "out", run_dir / "out")
