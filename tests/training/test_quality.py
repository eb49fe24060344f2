"""The product promise on the real base: auto hyperparameters on about 100 support examples teach the facts.

DESIGN.md's rule: with `auto` hyperparameters, about 100 support examples and 3 epochs must make the
built-in base answer its training questions with the trained facts. The test trains on 104 of the 156
bundled examples (two of every three, so every topic is in), which `auto` gives 3 epochs of batch 1.
Slow (minutes on a 2-core CPU): `pytest -m slow tests/training`. Training runs in its own process, as a
job does: in the test process, OpenMP thread pools left by earlier tests made it twice as slow. The second
holds a bilingual set to the per-language bar of issue 19.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from support_score import generate_answers, load_questions, rouge_by_language, score
from testkit import write_jsonl
from trainkit import run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_auto_lora_learns_the_support_facts(settings, tmp_path):
    from peft import PeftModel

    from tuneforge.models import load_base_model, load_tokenizer

    rows = [json.loads(line) for line in (EXAMPLES / "support_train.jsonl").read_text("utf-8").splitlines()]
    train = write_jsonl(tmp_path / "support_104.jsonl", [r for i, r in enumerate(rows) if i % 3 != 2])
    base_name = settings.default_base_model
    code, events, stderr = run_cli({"base_model": base_name, "output_dir": str(tmp_path / "job"),
                                    "training_file": str(train)}, tmp_path, timeout=1500)
    kinds = {e["type"]: e for e in events}
    assert code == 0 and "completed" in kinds, stderr[-2000:]
    assert kinds["started"]["hyperparameters"] == {"n_epochs": 3, "batch_size": 1,
                                                   "learning_rate_multiplier": 2.0}
    final_dir = tmp_path / "job" / "final"
    tok = load_tokenizer(base_name)
    seen = load_questions(train)[::4]
    held = load_questions(EXAMPLES / "support_heldout.jsonl")
    base = load_base_model(base_name, dtype=torch.float32)
    base_held = score(generate_answers(base, tok, [m for m, _ in held]), [r for _, r in held])
    tuned = PeftModel.from_pretrained(base, final_dir).eval()
    tuned_seen = score(generate_answers(tuned, tok, [m for m, _ in seen]), [r for _, r in seen])
    tuned_held = score(generate_answers(tuned, tok, [m for m, _ in held]), [r for _, r in held])
    print(f"scores: seen {tuned_seen:.2f}, held-out {tuned_held:.2f} (base {base_held:.2f})")
    assert tuned_seen >= 0.8, f"training questions answered with the trained facts: {tuned_seen:.2f}"
    assert tuned_held > base_held + 0.3, f"held-out: tuned {tuned_held:.2f} vs base {base_held:.2f}"



@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_five_epochs_teach_both_languages_of_a_bilingual_set(settings, tmp_path):
    """Issue 19's bar, per language, on the same 104 bilingual examples (78 English, 26 Chinese): the tuned
    model reproduces its training answers (ROUGE-L >= 0.6 in each language) and beats its base on the
    held-out paraphrases by >= 0.15 in each language. `auto` (3 epochs) misses the first in Chinese on
    either base (docs/training.md "Languages": 0.56 here, and Gemma's 0.62 in bf16 falls to 0.45 in fp32);
    5 epochs on the default base measured 1.00 / 0.89 and +0.60 / +0.24, in fp32 (what `auto` precision
    picks for this base on both CPUs seen)."""
    from peft import PeftModel

    from tuneforge.models import load_base_model, load_tokenizer

    rows = [json.loads(line) for line in (EXAMPLES / "support_train.jsonl").read_text("utf-8").splitlines()]
    train = write_jsonl(tmp_path / "support_104.jsonl", [r for i, r in enumerate(rows) if i % 3 != 2])
    base_name = settings.default_base_model
    code, events, stderr = run_cli({"base_model": base_name, "output_dir": str(tmp_path / "job"),
                                    "training_file": str(train), "n_epochs": 5}, tmp_path, timeout=1500)
    assert code == 0 and events[-1]["type"] == "completed", stderr[-2000:]
    tok = load_tokenizer(base_name)
    seen = load_questions(train)[1::2]  # the rows repeat 4 English, 2 Chinese: every Chinese one is here
    held = load_questions(EXAMPLES / "support_heldout.jsonl")
    base = load_base_model(base_name, dtype=torch.float32)
    base_held = rouge_by_language(generate_answers(base, tok, [m for m, _ in held]), [r for _, r in held])
    tuned = PeftModel.from_pretrained(base, tmp_path / "job" / "final").eval()
    tuned_seen = rouge_by_language(generate_answers(tuned, tok, [m for m, _ in seen]), [r for _, r in seen])
    tuned_held = rouge_by_language(generate_answers(tuned, tok, [m for m, _ in held]), [r for _, r in held])
    print(f"ROUGE-L per language: seen {tuned_seen}, held-out {tuned_held} (base {base_held})")
    for language in ("en", "zh"):
        assert tuned_seen[language] >= 0.6, f"{language} training answers: {tuned_seen[language]:.2f}"
        assert tuned_held[language] >= base_held[language] + 0.15, \
            f"{language} held-out: tuned {tuned_held[language]:.2f} vs base {base_held[language]:.2f}"
