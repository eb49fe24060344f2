"""Preference (DPO) rows: one prompt, a preferred and a non-preferred assistant answer.

A row `{"input": {"messages": [...], "tools": [...]?}, "preferred_output": [msg],
"non_preferred_output": [msg]}` (also the 2025 names `preferred_completion` / `non_preferred_completion`)
becomes two chat conversations, prompt + preferred and prompt + non-preferred, encoded by
`encode.encode_example`: the same chat template and token boundaries supervised training uses. Only the
final assistant message carries loss; assistant turns inside the prompt are context (weight 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from tuneforge.data.encode import EncodedExample, encode_example

PREFERRED = ("preferred_output", "preferred_completion")
NON_PREFERRED = ("non_preferred_output", "non_preferred_completion")


@dataclass
class EncodedPair:
    chosen: EncodedExample
    rejected: EncodedExample

    @property
    def truncated(self) -> bool:
        return self.chosen.truncated or self.rejected.truncated

    @property
    def trainable(self) -> bool:
        """Both answers kept at least one token after truncation."""
        return self.chosen.n_trained_tokens > 0 and self.rejected.n_trained_tokens > 0

    @property
    def n_tokens(self) -> int:
        return len(self.chosen.input_ids) + len(self.rejected.input_ids)


def is_preference_row(row: dict) -> bool:
    return isinstance(row, dict) and "input" in row and any(k in row for k in PREFERRED + NON_PREFERRED)


def _answer(row: dict, names: tuple[str, str]) -> dict:
    for name in names:
        value = row.get(name)
        if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
            return {k: v for k, v in value[0].items() if k != "weight"}  # the answer is always trained
    raise ValueError(f"`{names[0]}` must be a list of exactly one assistant message")


def pair_conversations(row: dict) -> tuple[dict, dict]:
    """(prompt + preferred, prompt + non-preferred) as chat rows `encode_example` reads."""
    inp = row.get("input")
    if not isinstance(inp, dict) or not isinstance(inp.get("messages"), list):
        raise ValueError("`input` must be an object holding the prompt `messages`")
    prompt = [{**m, "weight": 0} if m.get("role") == "assistant" else dict(m) for m in inp["messages"]]
    extra = {"tools": inp["tools"]} if inp.get("tools") else {}
    return ({"messages": [*prompt, _answer(row, PREFERRED)], **extra},
            {"messages": [*prompt, _answer(row, NON_PREFERRED)], **extra})


def encode_pair(row: dict, tokenizer, max_length: int) -> EncodedPair:
    """Both conversations as token ids with labels on the final assistant message only."""
    chosen, rejected = pair_conversations(row)
    return EncodedPair(encode_example(chosen, tokenizer, max_length),
                       encode_example(rejected, tokenizer, max_length))
