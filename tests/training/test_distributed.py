"""Data-parallel training (training/distributed.py) with torchrun's gloo backend on the CPU: two ranks are
one run, with the loss curve of one process on the same global batch and seed."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest
from trainkit import base_config

from tuneforge.training.launch import trainer_command, trainer_env

# Ranks sum the same numbers in a different order: float32 rounding, nothing more.
LOSS_TOLERANCE = 2e-3


def launch(config: dict, workdir: Path, processes: int, timeout: float = 300) -> tuple[int, list[dict], str]:
    path = workdir / f"train_config_{processes}.json"
    path.write_text(json.dumps(config), "utf-8")
    proc = subprocess.run(trainer_command(str(path), processes), env=trainer_env(processes),
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()], proc.stderr


def curve(out: Path) -> list[dict]:
    with (out / "results.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def one_and_two_ranks(tiny_model, tmp_path_factory):
    from testkit import write_jsonl
    from trainkit import chat_rows

    work = tmp_path_factory.mktemp("ddp")
    train = write_jsonl(work / "train.jsonl", chat_rows(11))
    valid = write_jsonl(work / "valid.jsonl", chat_rows(5))
    runs = {}
    for n in (1, 2):
        out = work / f"out-{n}"
        # 11 examples, batch 4: the last batch of each epoch is 3, so one rank gets one example fewer.
        code, events, err = launch(base_config(tiny_model, train, out, validation_file=str(valid)), work, n)
        assert code == 0, err[-3000:]
        runs[n] = (out, events)
    return runs


def test_two_ranks_follow_the_one_process_loss_curve(one_and_two_ranks):
    (one, _), (two, _) = one_and_two_ranks[1], one_and_two_ranks[2]
    a, b = curve(one), curve(two)
    assert [r["step"] for r in a] == [r["step"] for r in b] == [str(i) for i in range(1, 10)]
    for ra, rb in zip(a, b, strict=True):
        for column in ("train_loss", "train_accuracy", "valid_loss", "full_valid_loss", "elapsed_tokens"):
            if ra[column] == "":
                assert rb[column] == "", (column, ra["step"])
                continue
            assert float(rb[column]) == pytest.approx(float(ra[column]), rel=LOSS_TOLERANCE), \
                (column, ra["step"])
    assert curve(one)[0]["train_loss"] != curve(one)[-1]["train_loss"]  # it did train


def test_rank_zero_alone_reports_and_saves(one_and_two_ranks):
    out, events = one_and_two_ranks[2]
    kinds = [e["type"] for e in events]
    assert kinds.count("started") == 1 and kinds.count("completed") == 1, kinds
    assert events[0]["processes"] == 2
    assert kinds.count("step") == 9
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-3", "step-6", "step-9"]
    assert (out / "final" / "adapter_model.safetensors").is_file()
