"""Dataset statistics: sizes, token counts with the real tokenizer and chat template, and a training-time
estimate from a throughput measured on this machine (see `throughput.py`)."""

from __future__ import annotations

import statistics
from array import array
from collections import Counter
from dataclasses import dataclass, field

from tuneforge.data.language import answer_language
from tuneforge.data.throughput import estimate_seconds


def auto_epochs(n_examples: int) -> int:
    """OpenAI's `n_epochs: "auto"` (the cookbook rule the trainer also uses; importing the trainer here would
    pull in torch just to validate a file)."""
    if n_examples * 3 < 100:
        return min(25, 100 // max(1, n_examples))
    if n_examples * 3 > 25_000:
        return max(1, 25_000 // n_examples)
    return 3


def _summary(values: array) -> dict | None:
    if not values:
        return None
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {
        "min": ordered[0],
        "median": statistics.median(ordered),
        "p95": p95,
        "max": ordered[-1],
        "mean": round(sum(ordered) / len(ordered), 1),
    }


@dataclass
class StatsAccumulator:
    """Streams per-example numbers into compact arrays (a few bytes per example, not per token)."""

    messages: array = field(default_factory=lambda: array("I"))
    tokens: array = field(default_factory=lambda: array("I"))
    trained: array = field(default_factory=lambda: array("I"))
    chars: array = field(default_factory=lambda: array("I"))
    n_truncated: int = 0
    truncated_tokens: int = 0
    no_system: int = 0
    languages: Counter = field(default_factory=Counter)  # examples per language of their trained answers

    def add_row(self, row: dict, fmt: str) -> None:
        if fmt == "chat":
            msgs = row.get("messages")
            if not isinstance(msgs, list):  # the row already has a finding; keep the stats total
                msgs = []
            self.messages.append(len(msgs))
            self.no_system += not any(
                isinstance(m, dict) and m.get("role") in ("system", "developer") for m in msgs
            )
            self.chars.append(
                sum(
                    len(m["content"])
                    for m in msgs
                    if isinstance(m, dict) and isinstance(m.get("content"), str)
                )
            )
            self.languages[answer_language(row)] += 1
        elif fmt == "legacy":
            self.chars.append(sum(len(v) for v in (row.get("prompt"), row.get("completion"))
                                  if isinstance(v, str)))
            self.languages[answer_language(row)] += 1

    def add_tokens(self, n_tokens: int, n_trained: int, max_tokens: int) -> None:
        self.tokens.append(n_tokens)
        self.trained.append(n_trained)
        if n_tokens > max_tokens:
            self.n_truncated += 1
            self.truncated_tokens += n_tokens - max_tokens

    def finish(
        self, n_examples: int, max_tokens: int | None, base_model: str | None, n_epochs: int | None = None
    ) -> dict:
        epochs = n_epochs or auto_epochs(n_examples)
        stats: dict = {
            "n_examples": n_examples,
            "messages_per_example": _summary(self.messages),
            "characters_per_example": _summary(self.chars),
            "examples_without_system_message": self.no_system if self.messages else None,
            "languages": dict(self.languages.most_common()),
        }
        if self.tokens:
            kept = sum(min(t, max_tokens or t) for t in self.tokens)
            trained_per_epoch = sum(self.trained)
            stats.update(
                {
                    "max_tokens": max_tokens,
                    "tokens_per_example": _summary(self.tokens),
                    "trained_tokens_per_example": _summary(self.trained),
                    "total_tokens": kept,
                    "trained_tokens_per_epoch": trained_per_epoch,
                    "n_epochs": epochs,
                    "trained_tokens": trained_per_epoch * epochs,  # what OpenAI bills as `trained_tokens`
                    "truncated_examples": self.n_truncated,
                    "truncated_tokens": self.truncated_tokens,
                    "estimated_training_seconds": estimate_seconds(kept * epochs, base_model),
                }
            )
        return stats
