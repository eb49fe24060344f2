"""The training library in-process: determinism, failure modes, full fine-tuning, continued training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from testkit import write_jsonl
from trainkit import base_config, chat_rows

from tuneforge.training import TrainConfig, TrainingError, train

REFERENCE = Path(__file__).parent / "reference_curve.json"


def _run(cfg: dict, events: list | None = None, **kw):
    return train(TrainConfig.from_dict(cfg), callbacks=(events.append if events is not None else None), **kw)


def _losses(events: list[dict]) -> list[float]:
    return [e["train_loss"] for e in events if e["type"] == "step"]


def reference_config(tiny_model: str, data: Path, out: Path) -> dict:
    return base_config(tiny_model, data, out, n_epochs=2, batch_size=3, seed=1234)


def test_loss_curve_matches_committed_reference(tiny_model, tmp_path):
    """Same seed, data and hyperparameters give the same loss curve; a refactor that changes training
    fails here. Regenerate deliberately with `python tests/training/make_reference_curve.py`."""
    data = write_jsonl(tmp_path / "train.jsonl", chat_rows(12))
    events: list[dict] = []
    _run(reference_config(tiny_model, data, tmp_path / "out"), events)
    ref = json.loads(REFERENCE.read_text())
    assert len(_losses(events)) == len(ref["train_loss"]) == 8
    assert _losses(events) == pytest.approx(ref["train_loss"], rel=1e-4)
    accuracies = [e["train_mean_token_accuracy"] for e in events if e["type"] == "step"]
    assert accuracies == pytest.approx(ref["train_mean_token_accuracy"], abs=1e-6)


def test_same_seed_same_run_other_seed_differs(tiny_model, chat_file, tmp_path):
    a, b, c = [], [], []
    _run(base_config(tiny_model, chat_file, tmp_path / "a", n_epochs=1), a)
    _run(base_config(tiny_model, chat_file, tmp_path / "b", n_epochs=1), b)
    _run(base_config(tiny_model, chat_file, tmp_path / "c", n_epochs=1, seed=8), c)
    assert _losses(a) == _losses(b)
    assert _losses(a) != _losses(c)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tiny_model, chat_file, tmp_path):
    # 12 examples in one batch: one step per epoch. An absurd learning rate blows the weights up after
    # the first update (weights ~1e9: attention scores overflow fp32), so step 2 has a NaN loss.
    out = tmp_path / "out"
    cfg = base_config(tiny_model, chat_file, out, method="full", batch_size=12, learning_rate_multiplier=1e14)
    with pytest.raises(TrainingError) as err:
        _run(cfg)
    assert err.value.code == "non_finite_loss"
    assert "step 2" in str(err.value) and "step-1" in str(err.value)
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-1"]
    assert not (out / "final").exists()


def test_full_fine_tune_saves_a_plain_hf_model(tiny_model, chat_file, tmp_path):
    from transformers import AutoModelForCausalLM

    events: list[dict] = []
    result = _run(base_config(tiny_model, chat_file, tmp_path / "out", method="full", n_epochs=1,
                              learning_rate_multiplier=50), events)
    final = Path(result.final_dir)
    assert (final / "config.json").is_file() and (final / "tokenizer.json").is_file()
    assert json.loads((final / "tuneforge_model.json").read_text())["method"] == "full"
    AutoModelForCausalLM.from_pretrained(final)  # loads as a plain transformers model
    assert _losses(events)[-1] < _losses(events)[0]


def test_init_from_continues_the_same_adapter(tiny_model, chat_file, tmp_path):
    first = _run(base_config(tiny_model, chat_file, tmp_path / "one", n_epochs=1))
    w1 = load_file(Path(first.final_dir) / "adapter_model.safetensors")
    events: list[dict] = []
    second = _run(base_config(tiny_model, chat_file, tmp_path / "two", n_epochs=1,
                              init_from=first.final_dir), events)
    w2 = load_file(Path(second.final_dir) / "adapter_model.safetensors")
    assert w1.keys() == w2.keys()  # the same adapter, trained further (not a second one stacked)
    assert any(not torch.equal(w1[k], w2[k]) for k in w1)
    meta = json.loads((Path(second.final_dir) / "tuneforge_model.json").read_text())
    assert meta["base_model"] == tiny_model
    fresh: list[dict] = []
    _run(base_config(tiny_model, chat_file, tmp_path / "fresh", n_epochs=1), fresh)
    # Continuing starts from the first run's weights, so its first loss is the first run's end, not a restart.
    assert _losses(events)[0] < _losses(fresh)[0]


def test_weight_zero_everywhere_is_rejected(tiny_model, tmp_path):
    rows = chat_rows(12)
    for row in rows:
        row["messages"][-1]["weight"] = 0
    data = write_jsonl(tmp_path / "w0.jsonl", rows)
    with pytest.raises(TrainingError):
        _run(base_config(tiny_model, data, tmp_path / "out"))


def test_packing_gives_the_same_loss_as_one_example_at_a_time(tiny_model, chat_file, tmp_path):
    """A packed batch must not let examples attend to each other."""
    from tuneforge.data.encode import encode_example
    from tuneforge.models import load_tokenizer
    from tuneforge.training.config import TrainConfig as TC
    from tuneforge.training.dataset import pack
    from tuneforge.training.model import build_model
    from tuneforge.training.step import eval_rows

    tok = load_tokenizer(tiny_model)
    exs = [encode_example(r, tok, 128) for r in chat_rows(5)]
    from tuneforge.settings import get_settings

    cfg = TC.from_dict(base_config(tiny_model, chat_file, tmp_path))
    model = build_model(cfg, get_settings(), "cpu").eval()
    packed = eval_rows(model, pack(exs, 10_000), "cpu", False)
    single = eval_rows(model, [r for e in exs for r in pack([e], 10_000)], "cpu", False)
    assert len(pack(exs, 10_000)) == 1
    assert packed.loss == pytest.approx(single.loss, rel=1e-5)
    assert packed.n_correct == single.n_correct
