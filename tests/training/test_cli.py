"""`python -m tuneforge.training` end to end on the tiny model: protocol, outputs, bad input."""

from __future__ import annotations

import csv
import json
import re

from testkit import write_jsonl
from trainkit import base_config, chat_rows, run_cli


def test_lora_run_follows_the_protocol_and_layout(tiny_model, chat_file, valid_file, tmp_path):
    out = tmp_path / "job"
    cfg = base_config(tiny_model, chat_file, out, validation_file=str(valid_file), n_epochs="auto",
                      batch_size="auto", learning_rate_multiplier="auto")
    rc, events, stderr = run_cli(cfg, tmp_path)
    assert rc == 0, stderr
    kinds = [e["type"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "completed"
    started = events[0]
    # 12 examples: OpenAI's epoch heuristic gives min(25, 100 // 12) = 8 epochs; batch 1; multiplier 2.
    assert started["hyperparameters"] == {"n_epochs": 8, "batch_size": 1, "learning_rate_multiplier": 2.0}
    assert started["total_steps"] == 96 and started["resumed_from_step"] is None
    steps = [e for e in events if e["type"] == "step"]
    assert [s["step"] for s in steps] == list(range(1, 97))
    for key in ("train_loss", "train_mean_token_accuracy", "tokens_per_second", "eta_seconds",
                "elapsed_tokens", "elapsed_examples", "total_steps", "epoch"):
        assert key in steps[0]
    assert any("valid_loss" in s and "valid_mean_token_accuracy" in s for s in steps)
    epoch_ends = [e for e in events if e["type"] == "epoch_end"]
    assert len(epoch_ends) == 8 and "full_valid_loss" in epoch_ends[-1]
    assert "full_valid_by_language" not in epoch_ends[-1]  # one language: nothing to split
    # One checkpoint per epoch, only the last 3 kept on disk.
    ckpts = [e for e in events if e["type"] == "checkpoint"]
    assert [c["step"] for c in ckpts] == [12 * i for i in range(1, 9)]
    kept = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert kept == ["step-72", "step-84", "step-96"]
    assert (out / "checkpoints" / "step-96" / "training_state.pt").is_file()
    # The final adapter is in PEFT's own format and loads with plain peft.
    final = out / "final"
    assert (final / "adapter_config.json").is_file() and (final / "adapter_model.safetensors").is_file()
    meta = json.loads((final / "tuneforge_model.json").read_text())
    assert meta["base_model"] == tiny_model and meta["method"] == "lora"
    assert meta["hyperparameters"]["n_epochs"] == 8
    with (out / "results.csv").open() as fh:
        header = fh.readline().strip()
        rows = list(csv.DictReader([header, *fh]))
    assert header.startswith("step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy")
    assert len(rows) == 96 and rows[0]["step"] == "1"
    assert "training_sequence_accuracy" in header and "elapsed_tokens" in header
    valid = [float(r["valid_loss"]) for r in rows if r["valid_loss"]]
    assert len(valid) >= 8 and valid[-1] < valid[0]  # the loss goes down
    assert rows[11]["full_valid_loss"] and rows[-1]["full_valid_mean_token_accuracy"]
    assert steps[-1]["full_valid_loss"] == epoch_ends[-1]["full_valid_loss"]


def test_a_bilingual_validation_set_is_also_scored_per_language(tiny_model, chat_file, tmp_path):
    chinese = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
               for q, a in (("营业时间是几点？", "我们周一至周五 9:00-17:00 营业。"),
                            ("保修多久？", "每辆车的车架保修五年。"))]
    valid = write_jsonl(tmp_path / "valid.jsonl", chat_rows(3) + chinese)
    cfg = base_config(tiny_model, chat_file, tmp_path / "job", validation_file=str(valid), n_epochs=1)
    rc, events, stderr = run_cli(cfg, tmp_path)
    assert rc == 0, stderr
    end = next(e for e in events if e["type"] == "epoch_end")
    per = end["full_valid_by_language"]
    assert list(per) == ["en", "zh"] and [per["en"]["examples"], per["zh"]["examples"]] == [3, 2]
    losses = [per[c]["loss"] for c in per]
    # The whole set's loss is the token-weighted mix of the two: between them, and unequal to either.
    assert min(losses) < end["full_valid_loss"] < max(losses)
    assert all(0 <= per[c]["mean_token_accuracy"] <= 1 for c in per)


def test_adapter_loads_with_plain_peft(tiny_model, tiny_model_dir, chat_file, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "job"
    rc, _, stderr = run_cli(base_config(tiny_model, chat_file, out, n_epochs=1), tmp_path)
    assert rc == 0, stderr
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    tuned = PeftModel.from_pretrained(base, out / "final")
    names = [n for n, _ in tuned.named_parameters() if "lora_" in n]
    assert any("mlp.down_proj" in n for n in names) and any("self_attn.q_proj" in n for n in names)


def test_invalid_dataset_never_starts(tiny_model, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n' * 12 + "not json\n")
    rc, events, _ = run_cli(base_config(tiny_model, bad, tmp_path / "job"), tmp_path)
    assert rc == 1
    assert [e["type"] for e in events] == ["failed"]
    assert events[0]["code"] in ("invalid_training_file", "invalid_n_examples")
    assert re.search(r"(line|[Ee]xample) 1\b", events[0]["message"])  # names the first bad row
    assert not (tmp_path / "job" / "checkpoints").exists()


def test_too_few_examples(tiny_model, tmp_path, chat_file):
    rows = [json.loads(line) for line in chat_file.read_text().splitlines()]
    few = write_jsonl(tmp_path / "few.jsonl", rows[:3])
    rc, events, _ = run_cli(base_config(tiny_model, few, tmp_path / "job"), tmp_path)
    assert rc == 1 and events[-1]["code"] == "invalid_n_examples"


def test_bad_config_is_reported_not_raised(tiny_model, chat_file, tmp_path):
    rc, events, stderr = run_cli(base_config(tiny_model, chat_file, tmp_path / "job", n_epochs=0), tmp_path)
    assert rc == 1 and [(e["type"], e["code"]) for e in events] == [("failed", "invalid_config")]
    assert "'n_epochs'" in events[0]["message"] and "Traceback" not in stderr
