"""The product promise on the real base: auto hyperparameters on the bundled support data teach the facts.

Slow (trains SmolLM2-135M for 3 epochs, minutes on a 2-core CPU): `pytest -m slow tests/training`.
Training runs in its own process, as a job does, started when the session starts (quality_run.py): in
the test process, OpenMP thread pools left by earlier tests (engines on other threads) made the same
training more than twice as slow.
"""

from __future__ import annotations

import pytest
import quality_run
import torch
from support_score import generate_answers, load_questions, score

from tuneforge.settings import DEFAULT_BASE_MODEL


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_auto_lora_learns_the_support_facts(settings):
    from peft import PeftModel

    from tuneforge.models import load_base_model, load_tokenizer

    run = quality_run.start()  # already training unless this test runs alone
    code, events, stderr = run.result(timeout=2100)
    kinds = {e["type"]: e for e in events}
    assert code == 0 and "completed" in kinds, stderr[-2000:]
    assert kinds["started"]["hyperparameters"]["n_epochs"] == 3
    tok = load_tokenizer(DEFAULT_BASE_MODEL)
    seen = load_questions(quality_run.EXAMPLES / "support_train.jsonl")[::4]
    held = load_questions(quality_run.EXAMPLES / "support_heldout.jsonl")
    base = load_base_model(DEFAULT_BASE_MODEL, dtype=torch.float32)
    base_held = score(generate_answers(base, tok, [m for m, _ in held]), [r for _, r in held])
    tuned = PeftModel.from_pretrained(base, run.final_dir).eval()
    tuned_seen = score(generate_answers(tuned, tok, [m for m, _ in seen]), [r for _, r in seen])
    tuned_held = score(generate_answers(tuned, tok, [m for m, _ in held]), [r for _, r in held])
    assert tuned_seen >= 0.8, f"training questions answered with the trained facts: {tuned_seen:.2f}"
    assert tuned_held > base_held + 0.3, f"held-out: tuned {tuned_held:.2f} vs base {base_held:.2f}"
