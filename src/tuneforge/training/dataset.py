"""Training data: validate, encode, and plan packed batches.

A batch of `batch_size` examples is packed into rows with no padding at all; `position_ids` restart at 0
for every example, which makes transformers build a block-diagonal causal mask, so examples never attend
to each other (the same loss as a padded batch, without the wasted compute). Rows are capped at a token
budget and accumulated, so large batches do not need one giant forward pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tuneforge.data.encode import IGNORE, EncodedExample, encode_example
from tuneforge.data.language import answer_language


class DatasetError(ValueError):
    """The dataset cannot be trained on; `code` is OpenAI's error code, the message names the line."""

    def __init__(self, message: str, code: str = "invalid_training_file") -> None:
        super().__init__(message)
        self.code = code


def _validate(path: Path, tokenizer, min_examples: int, name: str, method: str = "supervised") -> None:
    try:
        from tuneforge.data.validate import validate_file
    except ImportError:  # the data package's validator is not installed yet: a minimal check instead
        _minimal_check(path, min_examples, name)
        return
    report = validate_file(path, tokenizer=tokenizer, min_examples=min_examples, method=method)
    if not report.ok:
        code, message = report.openai_error()
        # The user-facing name, never the server's storage path.
        raise DatasetError(f"{name}: {message}", code)


def _read_rows(path: Path) -> list[dict]:
    try:
        from tuneforge.data.io import read_examples
    except ImportError:
        return read_jsonl_rows(path)
    return read_examples(path)


def _minimal_check(path: Path, min_examples: int, name: str) -> None:
    """Every line a JSON object with chat messages (incl. an assistant turn) or prompt/completion."""
    n = 0
    for lineno, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        n += 1
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{name}, line {lineno}: not valid JSON ({exc.msg}).") from exc
        if not isinstance(row, dict):
            raise DatasetError(f"{name}, line {lineno}: expected a JSON object.")
        messages = row.get("messages")
        if isinstance(messages, list) and messages:
            if not all(isinstance(m, dict) and "role" in m for m in messages):
                raise DatasetError(f"{name}, line {lineno}: every message needs a 'role'.")
            if not any(m.get("role") == "assistant" for m in messages):
                raise DatasetError(f"{name}, line {lineno}: no assistant message to learn from.")
        elif not isinstance(row.get("completion"), str):
            raise DatasetError(f"{name}, line {lineno}: expected 'messages' or 'prompt'/'completion'.")
    if n < min_examples:
        raise DatasetError(f"{name}: {n} examples; at least {min_examples} are required.",
                           "invalid_n_examples")


def load_examples(path: str | Path, tokenizer, *, min_examples: int = 10,
                  display_name: str | None = None, method: str = "supervised") -> list[dict]:
    """The rows of a dataset that passes tuneforge's validation for `method` (supervised: chat or
    prompt/completion rows; dpo: preference pairs); raises DatasetError otherwise.
    Messages name the file by `display_name` (default: its basename), never by its server path."""
    path = Path(path)
    name = display_name or path.name
    if not path.is_file():
        raise DatasetError(f"{name}: no such file. Upload or prepare the dataset first.")
    _validate(path, tokenizer, min_examples, name, method)
    rows = _read_rows(path)
    if not rows:
        raise DatasetError(f"{name}: the file has no examples.", "invalid_n_examples")
    return rows


@dataclass
class EncodedSet:
    examples: list[EncodedExample]
    n_truncated: int
    n_skipped: int  # rows with nothing to train on (e.g. every assistant turn has weight 0)
    languages: list[str] = field(default_factory=list)  # each example's answer language (data/language.py)

    @property
    def n_tokens(self) -> int:
        return sum(len(e.input_ids) for e in self.examples)


def encode_rows(rows: list[dict], tokenizer, max_length: int, prompt_loss_weight: float) -> EncodedSet:
    kept, languages, truncated, skipped = [], [], 0, 0
    for row in rows:
        enc = encode_example(row, tokenizer, max_length, prompt_loss_weight)
        truncated += enc.truncated
        if enc.n_trained_tokens == 0:
            skipped += 1
            continue
        kept.append(enc)
        languages.append(answer_language(row))
    return EncodedSet(kept, truncated, skipped, languages)


@dataclass
class PackedRow:
    input_ids: torch.Tensor  # [1, T]
    position_ids: torch.Tensor  # [1, T]
    targets: torch.Tensor  # [T]: the token each position predicts, IGNORE where none
    weights: torch.Tensor | None  # [T] or None
    n_examples: int
    seq_correct: list[torch.Tensor]  # per example: target positions (for sequence accuracy)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """A shuffle that depends only on (seed, epoch), so a resumed run sees the same order."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen).tolist()


def batches_for_epoch(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    order = epoch_order(n, seed, epoch)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def pack(examples: list[EncodedExample], token_budget: int) -> list[PackedRow]:
    """Pack examples into rows of at most `token_budget` tokens (one example is never split)."""
    rows, group, used = [], [], 0
    for ex in examples:
        if group and used + len(ex.input_ids) > token_budget:
            rows.append(_pack_group(group))
            group, used = [], 0
        group.append(ex)
        used += len(ex.input_ids)
    if group:
        rows.append(_pack_group(group))
    return rows


def _pack_group(group: list[EncodedExample]) -> PackedRow:
    ids, pos, targets, weights, spans = [], [], [], [], []
    use_weights = any(e.loss_weights for e in group)
    for ex in group:
        start = len(ids)
        ids += ex.input_ids
        pos += range(len(ex.input_ids))
        # Position t predicts token t+1 of the same example; the last position predicts nothing.
        targets += ex.labels[1:] + [IGNORE]
        if use_weights:
            w = ex.loss_weights or [1.0 if lab != IGNORE else 0.0 for lab in ex.labels]
            weights += w[1:] + [0.0]
        spans.append((start, len(ids)))
    target_t = torch.tensor(targets)
    seq = [torch.nonzero(target_t[a:b] != IGNORE).flatten() + a for a, b in spans]
    return PackedRow(torch.tensor([ids]), torch.tensor([pos]), target_t,
                     torch.tensor(weights) if use_weights else None, len(group), seq)


def read_jsonl_rows(path: str | Path) -> list[dict]:
    """Plain JSONL reader for validation sets passed without the data package (tests, benchmarks)."""
    return [json.loads(line) for line in Path(path).read_text("utf-8").splitlines() if line.strip()]
