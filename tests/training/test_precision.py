"""Precision per machine (training/precision.py): what "auto" resolves to, the measurement cached with the
CPU's identity and the model's shape, and bf16 training that stays close to fp32's loss."""

from __future__ import annotations

import json

import pytest
from trainkit import base_config, run_cli

from tuneforge.training import precision


@pytest.fixture(scope="module")
def tiny_config(tiny_model_dir):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(tiny_model_dir)


def test_an_explicit_precision_wins_and_the_server_setting_decides_auto(tmp_path, tiny_config):
    for job, server, bf16 in (("bf16", "fp32", True), ("fp32", "bf16", False), ("auto", "bf16", True),
                              ("auto", "fp32", False)):
        assert precision.use_bf16(job, "cpu", server, tmp_path, tiny_config) is bf16, (job, server)
    assert not (tmp_path / precision.CACHE_FILE).exists()  # nothing was measured


def test_auto_on_a_cpu_is_measured_once_and_cached(tmp_path, monkeypatch, tiny_config):
    choice = precision.use_bf16("auto", "cpu", "auto", tmp_path, tiny_config, "lora")
    cache = json.loads((tmp_path / precision.CACHE_FILE).read_text())
    entry = cache[precision.cache_key(tiny_config, "lora")]
    assert entry["bf16"] is choice
    flags = precision.cpu_identity()["flags"]
    if not any(f in flags for f in precision.FAST_BF16_FLAGS):
        assert choice is False and "reason" in entry  # a CPU with slow bf16 is never measured
    else:
        assert entry["bf16_ms"] > 0 and entry["fp32_ms"] > 0

    def no_second_measurement(*args):
        raise AssertionError("measured again although the answer is cached")

    monkeypatch.setattr(precision, "measure_cpu", no_second_measurement)
    assert precision.use_bf16("auto", "cpu", "auto", tmp_path, tiny_config, "lora") is choice
    # The answer read is this CPU's and this shape's: change the cached one and it is what comes back.
    cache[precision.cache_key(tiny_config, "lora")] = {"bf16": not choice}
    (tmp_path / precision.CACHE_FILE).write_text(json.dumps(cache))
    assert precision.use_bf16("auto", "cpu", "auto", tmp_path, tiny_config, "lora") is (not choice)
    with pytest.raises(AssertionError, match="measured again"):  # a full fine-tune is another shape
        precision.use_bf16("auto", "cpu", "auto", tmp_path, tiny_config, "full")


def test_the_probe_runs_the_trainers_step_in_both_precisions(tiny_config):
    for method in ("lora", "full"):
        for bf16 in (False, True):
            assert precision._probe_seconds(tiny_config, method, bf16, tokens=16, reps=1) > 0


def test_a_damaged_cache_is_measured_again(tmp_path, tiny_config):
    (tmp_path / precision.CACHE_FILE).write_text("{not json")
    choice = precision.use_bf16("auto", "cpu", "auto", tmp_path, tiny_config)
    cache = json.loads((tmp_path / precision.CACHE_FILE).read_text())
    assert cache[precision.cache_key(tiny_config, "lora")]["bf16"] is choice


def test_bf16_training_keeps_the_loss_of_fp32(tiny_model, chat_file, tmp_path):
    curves = {}
    for name in ("fp32", "bf16"):
        work = tmp_path / name
        work.mkdir()
        config = base_config(tiny_model, chat_file, work / "out", precision=name, n_epochs=2)
        code, events, err = run_cli(config, work)
        assert code == 0, err[-2000:]
        assert events[0]["bf16"] is (name == "bf16")
        curves[name] = [e["train_loss"] for e in events if e["type"] == "step"]
    assert curves["bf16"][0] == pytest.approx(curves["fp32"][0], rel=0.02)
    assert curves["bf16"][-1] == pytest.approx(curves["fp32"][-1], rel=0.05)
