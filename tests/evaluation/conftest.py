"""A small held-out file and a LoRA adapter on the tiny model that was trained on it (so it must win)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SYSTEM = "You are the support bot of Harbor Bikes."
ROWS = [
    ("How long is the warranty?", "Two years on the frame."),
    ("保修期多长？", "车架保修两年。"),
    ("Do you ship abroad?", "Yes, to the EU."),
]


@pytest.fixture(scope="session")
def heldout(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("eval") / "heldout.jsonl"
    lines = [json.dumps({"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q},
                                      {"role": "assistant", "content": a}]}, ensure_ascii=False)
             for q, a in ROWS]
    lines.append(json.dumps({"prompt": "Shop city ->", "completion": " Lisbon"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tuned_adapter(tmp_path_factory, tiny_model, heldout, settings) -> Path:
    """A LoRA adapter trained to memorise `heldout`, saved as a tuneforge model folder."""
    import torch
    from peft import LoraConfig, get_peft_model

    from tuneforge.data.encode import encode_example
    from tuneforge.models.loading import load_base_model, load_tokenizer

    torch.manual_seed(0)
    tokenizer = load_tokenizer(tiny_model, settings)
    model = get_peft_model(load_base_model(tiny_model, settings),
                           LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "o_proj"]))
    model.train()
    rows = [json.loads(line) for line in heldout.read_text().splitlines()]
    batch = [encode_example(r, tokenizer, 256) for r in rows]
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    for _ in range(25):
        for e in batch:
            out = model(input_ids=torch.tensor([e.input_ids]), labels=torch.tensor([e.labels]))
            out.loss.backward()
            optim.step()
            optim.zero_grad()
    folder = tmp_path_factory.mktemp("models") / "tuned"
    model.save_pretrained(folder)
    (folder / "tuneforge_model.json").write_text(json.dumps({"base_model": tiny_model, "method": "lora"}))
    return folder
