"""DPO in-process: the loss, the encoding of pairs, a run that moves held-out preferences, resume."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from dpokit import heldout_pairs, margins, pair_row, train_pairs
from testkit import write_jsonl
from trainkit import base_config

from tuneforge.data.encode import IGNORE, encode_example
from tuneforge.data.preference import encode_pair
from tuneforge.training import ConfigError, TrainConfig, TrainingError, train
from tuneforge.training.dpo import dpo_terms
from tuneforge.training.dpo_run import REFERENCE_FILE


def _cfg(tiny_model, data, out, **over) -> dict:
    return base_config(tiny_model, data, out, **{"training_method": "dpo", "n_epochs": 3, "batch_size": 2,
                                                 "learning_rate_multiplier": 20, **over})


def test_loss_is_log2_at_the_reference_and_falls_as_the_margin_grows():
    ref = torch.tensor([[-10.0, -12.0], [-5.0, -5.0]])
    losses, chosen, rejected = dpo_terms(ref.clone(), ref, beta=0.1)
    assert losses.tolist() == pytest.approx([math.log(2)] * 2)
    assert chosen.tolist() == [0.0, 0.0] and rejected.tolist() == [0.0, 0.0]
    better = ref + torch.tensor([[1.0, -1.0], [0.0, 0.0]])  # chosen up, rejected down on the first pair
    losses, chosen, rejected = dpo_terms(better, ref, beta=0.5)
    assert chosen[0] == pytest.approx(0.5) and rejected[0] == pytest.approx(-0.5)
    assert losses[0] == pytest.approx(-math.log(1 / (1 + math.exp(-1.0))))
    assert losses[0] < math.log(2) and losses[1] == pytest.approx(math.log(2))


def test_pairs_are_encoded_as_supervised_chat_with_loss_on_the_answer_only(tokenizer):
    row = pair_row("Where is my order?", 0)
    row["input"]["messages"] += [{"role": "assistant", "content": "Earlier answer."},
                                 {"role": "user", "content": "And now?"}]
    pair = encode_pair(row, tokenizer, 512)
    chat = {"messages": row["input"]["messages"] + row["preferred_output"]}
    plain = encode_example(chat, tokenizer, 512)
    assert pair.chosen.input_ids == plain.input_ids  # the same chat template rendering
    trained = tokenizer.decode([t for t in pair.chosen.labels if t != IGNORE])
    assert trained == row["preferred_output"][0]["content"] + tokenizer.eos_token  # not "Earlier answer."
    rejected = tokenizer.decode([t for t in pair.rejected.labels if t != IGNORE])
    assert rejected == row["non_preferred_output"][0]["content"] + tokenizer.eos_token
    old = encode_pair(pair_row("Where is my order?", 1, old_names=True), tokenizer, 512)  # 2025 names
    new = encode_pair(pair_row("Where is my order?", 1), tokenizer, 512)
    assert (old.chosen.input_ids, old.rejected.input_ids) == (new.chosen.input_ids, new.rejected.input_ids)


def test_dpo_run_raises_the_heldout_margin(tiny_model, tiny_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", train_pairs(12))
    valid = write_jsonl(tmp_path / "valid.jsonl", heldout_pairs())
    events: list[dict] = []
    cfg = _cfg(tiny_model, data, tmp_path / "out", validation_file=str(valid))
    result = train(TrainConfig.from_dict(cfg), callbacks=events.append)
    assert result.status == "succeeded" and result.hyperparameters["beta"] == 0.1
    steps = [e for e in events if e["type"] == "step"]
    assert len(steps) == 18 and steps[0]["train_loss"] == pytest.approx(math.log(2), abs=0.05)
    assert steps[-1]["train_loss"] < steps[0]["train_loss"]
    assert steps[-1]["train_reward_accuracy"] == 1.0 and steps[-1]["train_reward_margin"] > 0
    assert "full_valid_reward_accuracy" in steps[-1] and "valid_reward_margin" in steps[-1]
    before = margins(tiny_model_dir, None, heldout_pairs())
    after = margins(tiny_model_dir, tmp_path / "out" / "final", heldout_pairs())
    assert all(a > b + 1.0 for a, b in zip(after, before, strict=True)), (before, after)  # every pair
    with open(tmp_path / "out" / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == list(range(1, 19))
    assert rows[0]["train_reward_accuracy"] != "" and "train_mean_token_accuracy" not in rows[0]


def test_resume_reads_the_saved_reference_and_finishes_the_same_run(tiny_model, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", train_pairs(12))
    whole: list[dict] = []
    train(TrainConfig.from_dict(_cfg(tiny_model, data, tmp_path / "a")), callbacks=whole.append)
    calls = {"n": 0}

    def stop_after_epoch_one() -> bool:
        calls["n"] += 1
        return calls["n"] > 7  # 6 steps per epoch: stops after the epoch-1 checkpoint and one step more

    first: list[dict] = []
    cfg = _cfg(tiny_model, data, tmp_path / "b")
    assert train(TrainConfig.from_dict(cfg), first.append, stop_after_epoch_one).status == "cancelled"
    reference = torch.load(tmp_path / "b" / REFERENCE_FILE)["train"]
    second: list[dict] = []
    assert train(TrainConfig.from_dict({**cfg, "resume": True}), second.append).status == "succeeded"
    assert torch.equal(torch.load(tmp_path / "b" / REFERENCE_FILE)["train"], reference)
    assert second[0]["resumed_from_step"] == 7
    losses = {e["step"]: e["train_loss"] for e in first + second if e["type"] == "step"}
    assert [losses[s] for s in range(1, 19)] == pytest.approx([e["train_loss"] for e in whole
                                                               if e["type"] == "step"], rel=1e-4)


def test_bad_dpo_settings_and_files_are_refused(tiny_model, tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", train_pairs(12))
    for beta in (0, 2.5, True, "high"):
        with pytest.raises(ConfigError, match="'beta'"):
            TrainConfig.from_dict(_cfg(tiny_model, data, tmp_path / "x", beta=beta))
    with pytest.raises(ConfigError, match="'training_method'"):
        TrainConfig.from_dict(_cfg(tiny_model, data, tmp_path / "x", training_method="reinforcement"))
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hey"}]
    chat = write_jsonl(tmp_path / "chat.jsonl", [{"messages": turns}] * 12)
    with pytest.raises(TrainingError, match="fine-tune-chat format") as err:
        train(TrainConfig.from_dict(_cfg(tiny_model, chat, tmp_path / "y")))
    assert err.value.code == "invalid_training_file"


def test_dpo_from_a_fine_tune_uses_that_fine_tune_as_reference(tiny_model, tiny_model_dir, tmp_path):
    from trainkit import chat_rows

    sft = write_jsonl(tmp_path / "chat.jsonl", chat_rows(12))
    train(TrainConfig.from_dict(base_config(tiny_model, sft, tmp_path / "sft", n_epochs=1,
                                            learning_rate_multiplier=20)))
    pairs = write_jsonl(tmp_path / "pairs.jsonl", train_pairs(12))
    events: list[dict] = []
    cfg = _cfg(tiny_model, pairs, tmp_path / "dpo", n_epochs=1, init_from=str(tmp_path / "sft" / "final"))
    train(TrainConfig.from_dict(cfg), callbacks=events.append)
    first = next(e for e in events if e["type"] == "step")
    assert first["train_loss"] == pytest.approx(math.log(2), abs=0.05)  # policy starts at its reference
    reference = torch.load(tmp_path / "dpo" / REFERENCE_FILE)["train"]
    assert (reference[:, 0] - reference[:, 1]).tolist() == pytest.approx(
        margins(tiny_model_dir, tmp_path / "sft" / "final", train_pairs(12)), abs=1e-3)  # the fine-tune's
    assert (reference[:, 0] - reference[:, 1]).tolist() != pytest.approx(
        margins(tiny_model_dir, None, train_pairs(12)), abs=1e-3)  # not the base's


def test_full_dpo_trains_every_weight_against_the_saved_starting_point(tiny_model, tmp_path):
    pairs = write_jsonl(tmp_path / "pairs.jsonl", train_pairs(12))
    events: list[dict] = []
    cfg = _cfg(tiny_model, pairs, tmp_path / "full", method="full", n_epochs=2, learning_rate_multiplier=200)
    assert train(TrainConfig.from_dict(cfg), callbacks=events.append).status == "succeeded"
    steps = [e for e in events if e["type"] == "step"]
    assert events[0]["learning_rate"] == pytest.approx(2e-4)  # DPO's full base rate 1e-6 x 200
    assert steps[-1]["train_reward_margin"] > 0 and steps[-1]["train_loss"] < math.log(2)
    assert (tmp_path / "full" / "final" / "model.safetensors").is_file()
