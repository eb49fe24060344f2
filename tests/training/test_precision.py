"""Precision per machine (training/precision.py): what "auto" resolves to, the cache keyed by the CPU, and
bf16 training that stays close to fp32's loss."""

from __future__ import annotations

import json

import pytest
from trainkit import base_config, run_cli

from tuneforge.training import precision


def test_an_explicit_precision_wins_and_the_server_setting_decides_auto(tmp_path):
    assert precision.use_bf16("bf16", "cpu", "fp32", tmp_path) is True
    assert precision.use_bf16("fp32", "cpu", "bf16", tmp_path) is False
    assert precision.use_bf16("auto", "cpu", "bf16", tmp_path) is True
    assert precision.use_bf16("auto", "cpu", "fp32", tmp_path) is False
    assert not (tmp_path / precision.CACHE_FILE).exists()  # nothing was measured


def test_auto_on_a_cpu_is_measured_once_and_cached_with_the_cpus_identity(tmp_path, monkeypatch):
    identity = precision.cpu_identity()
    choice = precision.use_bf16("auto", "cpu", "auto", tmp_path)
    cache = json.loads((tmp_path / precision.CACHE_FILE).read_text())
    entry = cache[json.dumps(identity, sort_keys=True)]
    assert entry["bf16"] is choice
    if not any(f in identity["flags"] for f in precision.FAST_BF16_FLAGS):
        assert choice is False and "reason" in entry  # a CPU with slow bf16 is never measured
    else:
        assert entry["bf16_ms"] > 0 and entry["fp32_ms"] > 0

    def no_second_measurement():
        raise AssertionError("measured again although the answer is cached")

    monkeypatch.setattr(precision, "measure_cpu", no_second_measurement)
    assert precision.use_bf16("auto", "cpu", "auto", tmp_path) is choice
    # Another CPU (or torch) is another key: its answer is not this one's.
    cache[json.dumps(identity, sort_keys=True)] = {"bf16": not choice}
    (tmp_path / precision.CACHE_FILE).write_text(json.dumps(cache))
    assert precision.use_bf16("auto", "cpu", "auto", tmp_path) is (not choice)


def test_a_damaged_cache_is_measured_again(tmp_path):
    (tmp_path / precision.CACHE_FILE).write_text("{not json")
    choice = precision.use_bf16("auto", "cpu", "auto", tmp_path)
    assert isinstance(json.loads((tmp_path / precision.CACHE_FILE).read_text()), dict)
    assert isinstance(choice, bool)


@pytest.mark.parametrize("method", ["lora"])
def test_bf16_training_keeps_the_loss_of_fp32(tiny_model, chat_file, tmp_path, method):
    finals = {}
    for name in ("fp32", "bf16"):
        work = tmp_path / name
        work.mkdir()
        cfg = base_config(tiny_model, chat_file, work / "out", precision=name, n_epochs=2, method=method)
        code, events, err = run_cli(cfg, work)
        assert code == 0, err[-2000:]
        assert events[0]["bf16"] is (name == "bf16")
        finals[name] = [e["train_loss"] for e in events if e["type"] == "step"]
    assert finals["bf16"][0] == pytest.approx(finals["fp32"][0], rel=0.02)
    assert finals["bf16"][-1] == pytest.approx(finals["fp32"][-1], rel=0.05)
