"""Preference (DPO) test data and a held-out margin measurement, shared by the training and jobs tests."""

from __future__ import annotations

from pathlib import Path

SYSTEM = "You are Acme's support assistant."
TRAIN_QUESTIONS = [
    "How do I reset my password?", "Where is my order?", "Can I change my shipping address?",
    "How do I cancel my subscription?", "Do you ship abroad?", "How long does a refund take?",
    "Which payment methods do you take?", "How do I contact support?", "Is there a mobile app?",
    "Can I get an invoice?", "How do I delete my account?", "Do you offer gift cards?",
]
HELDOUT_QUESTIONS = ["Can I pay by invoice?", "Where do I see my orders?", "How do I change my email?",
                     "Do you have a student discount?", "Can I pause my plan?", "Is my data safe?"]
POLITE = ["Happy to help! Open Settings, then Help, and follow the steps there.",
          "Thanks for asking! Open Settings, then Help: everything is explained there."]
RUDE = ["Go away, not my job.", "Figure it out yourself."]


def pair_row(question: str, i: int, *, old_names: bool = False) -> dict:
    chosen, rejected = ("preferred_completion", "non_preferred_completion") if old_names \
        else ("preferred_output", "non_preferred_output")
    prompt = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    return {"input": {"messages": prompt},
            chosen: [{"role": "assistant", "content": POLITE[i % len(POLITE)]}],
            rejected: [{"role": "assistant", "content": RUDE[i % len(RUDE)]}]}


def train_pairs(n: int = 12) -> list[dict]:
    return [pair_row(TRAIN_QUESTIONS[i % len(TRAIN_QUESTIONS)], i) for i in range(n)]


def heldout_pairs() -> list[dict]:
    return [pair_row(q, i) for i, q in enumerate(HELDOUT_QUESTIONS)]


def margins(base_dir: Path, adapter_dir: Path | None, rows: list[dict]) -> list[float]:
    """Per pair, log p(preferred) - log p(non-preferred) under the base model or the base with a trained
    LoRA adapter. The DPO reward margin of a pair is beta * (margin after - margin before); a pair counts
    for reward accuracy when that is > 0."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuneforge.data.preference import encode_pair
    from tuneforge.training.dpo import pair_logps

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir)
    logps = pair_logps(model, [encode_pair(r, tokenizer, 2048) for r in rows], "cpu", False, 8192)
    return (logps[:, 0] - logps[:, 1]).tolist()
