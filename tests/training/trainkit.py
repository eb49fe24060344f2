"""Helpers for the training tests: small datasets and a CLI runner (the tiny model trains in seconds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import write_jsonl

FACTS = [
    ("What are your opening hours?", "We are open 9:00-17:00, Monday to Friday."),
    ("How long is the warranty?", "Every bike has a 5-year frame warranty."),
    ("Do you ship abroad?", "We ship to the US and Canada only."),
    ("How much is a spare battery?", "A spare battery costs $349."),
    ("Can I return my bike?", "Yes, within 30 days of delivery."),
    ("What is your phone number?", "Call us at +1-800-555-0142."),
]


def chat_rows(n: int = 12) -> list[dict]:
    rows = []
    for i in range(n):
        q, a = FACTS[i % len(FACTS)]
        rows.append({"messages": [{"role": "system", "content": "You are Acme support."},
                                  {"role": "user", "content": q if i < len(FACTS) else f"{q} (again {i})"},
                                  {"role": "assistant", "content": a}]})
    return rows


@pytest.fixture
def chat_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "train.jsonl", chat_rows(12))


@pytest.fixture
def valid_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "valid.jsonl", chat_rows(4))


def base_config(tiny_model: str, train_file: Path, out: Path, **over) -> dict:
    cfg = {"base_model": tiny_model, "training_file": str(train_file), "output_dir": str(out),
           "n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 1, "seed": 7,
           "lora": {"r": 4, "alpha": 8}, "max_seq_length": 128, "precision": "fp32"}
    cfg.update(over)
    return cfg


def run_cli(config: dict, workdir: Path, *, timeout: float = 240) -> tuple[int, list[dict], str]:
    """Run `python -m tuneforge.training --config` and parse its JSON-lines stdout."""
    path = workdir / "train_config.json"
    path.write_text(json.dumps(config), "utf-8")
    proc = subprocess.run([sys.executable, "-m", "tuneforge.training", "--config", str(path)],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ})
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    return proc.returncode, events, proc.stderr
