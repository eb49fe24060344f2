"""How many examples a file needs: the one place this rule lives (validator, worker and trainer use it)."""

from __future__ import annotations

# /v1/fine_tuning/jobs asks for 10 training examples; OpenAI's legacy /v1/fine-tunes trained a 2-example
# file (seed tutorial 003 runs verbatim), so legacy jobs need only 1. A validation file needs 1.
_TRAINING_MIN = 10
_LEGACY_TRAINING_MIN = 1
_VALIDATION_MIN = 1


def min_examples(purpose: str, legacy: bool) -> int:
    """The fewest examples a file for `purpose` ("training" or "validation") must hold."""
    if purpose == "validation":
        return _VALIDATION_MIN
    if purpose != "training":
        raise ValueError(f"purpose must be 'training' or 'validation', got {purpose!r}")
    return _LEGACY_TRAINING_MIN if legacy else _TRAINING_MIN
