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


def run_one_and_two(work: Path, tiny_model: str, n_train: int, n_valid: int, **options) -> dict:
    """The same run in one process and in two ranks: {processes: (output_dir, events, config)}."""
    from testkit import write_jsonl
    from trainkit import chat_rows

    train = write_jsonl(work / "train.jsonl", chat_rows(n_train))
    valid = write_jsonl(work / "valid.jsonl", chat_rows(n_valid))
    runs = {}
    for n in (1, 2):
        out = work / f"out-{n}"
        config = base_config(tiny_model, train, out, validation_file=str(valid), **options)
        code, events, err = launch(config, work, n)
        assert code == 0, (events[-1:], err[-3000:])
        runs[n] = (out, events, config)
    return runs


@pytest.fixture(scope="module")
def one_and_two_ranks(tiny_model, tmp_path_factory):
    # 11 examples, batch 4: the last batch of each epoch is 3, so one rank gets one example fewer.
    return run_one_and_two(tmp_path_factory.mktemp("ddp"), tiny_model, 11, 5)


def test_two_ranks_follow_the_one_process_loss_curve(one_and_two_ranks):
    (one, _, _), (two, _, _) = one_and_two_ranks[1], one_and_two_ranks[2]
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
    out, events, _ = one_and_two_ranks[2]
    kinds = [e["type"] for e in events]
    assert kinds.count("started") == 1 and kinds.count("completed") == 1, kinds
    assert events[0]["processes"] == 2
    assert kinds.count("step") == 9
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-3", "step-6", "step-9"]
    assert (out / "final" / "adapter_model.safetensors").is_file()


@pytest.fixture(scope="module")
def full_one_and_two_ranks(tiny_model, tmp_path_factory):
    """Full fine-tunes: two ranks shard the model (FSDP2) instead of each holding all of it."""
    return run_one_and_two(tmp_path_factory.mktemp("fsdp"), tiny_model, 7, 3, method="full", n_epochs=2,
                           batch_size=3, learning_rate_multiplier=0.5, min_examples=1)


def test_a_sharded_full_fine_tune_follows_the_one_process_curve(full_one_and_two_ranks):
    (one, _, _), (two, events, _) = full_one_and_two_ranks[1], full_one_and_two_ranks[2]
    assert events[0]["layout"] == "sharded (FSDP2)" and events[0]["processes"] == 2
    a, b = curve(one), curve(two)
    # 7 examples, batch 3: the last batch of each epoch has one example, so rank 1 runs a weightless pass.
    assert len(a) == len(b) == 6
    for ra, rb in zip(a, b, strict=True):
        for column in ("train_loss", "valid_loss", "full_valid_loss"):
            if ra[column]:
                assert float(rb[column]) == pytest.approx(float(ra[column]), rel=LOSS_TOLERANCE), \
                    (column, ra["step"])


def test_a_sharded_run_saves_whole_weights_that_load_as_a_plain_model(full_one_and_two_ranks):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    (one, _, _), (two, _, _) = full_one_and_two_ranks[1], full_one_and_two_ranks[2]
    mine = load_file(two / "final" / "model.safetensors")
    theirs = load_file(one / "final" / "model.safetensors")
    assert mine.keys() == theirs.keys()
    for name, tensor in theirs.items():
        assert mine[name].shape == tensor.shape  # whole tensors, not one rank's shard
        assert torch.allclose(mine[name], tensor, atol=1e-4, rtol=1e-3), name
    AutoModelForCausalLM.from_pretrained(two / "final")  # a plain Hugging Face folder
    state = torch.load(two / "checkpoints" / "step-3" / "training_state.pt", weights_only=False)
    assert state["optimizer_format"] == "by_name"


def test_a_sharded_run_resumes_from_its_checkpoint(full_one_and_two_ranks, tmp_path):
    import shutil

    (two, _, config) = full_one_and_two_ranks[2]
    out = tmp_path / "resumed"
    shutil.copytree(two / "checkpoints", out / "checkpoints")
    shutil.rmtree(out / "checkpoints" / "step-6")  # as if the run had died during its second epoch
    code, events, err = launch({**config, "output_dir": str(out), "resume": True}, tmp_path, 2)
    assert code == 0, err[-3000:]
    assert events[0]["resumed_from_step"] == 3
    resumed = [e["train_loss"] for e in events if e["type"] == "step"]
    straight = [float(r["train_loss"]) for r in curve(two)][3:]
    assert resumed == pytest.approx(straight, rel=LOSS_TOLERANCE)
