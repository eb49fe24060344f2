"""Evaluation's user-facing errors (kept free of heavy imports: the CLI registers them at startup)."""

from tuneforge.models.loading import ModelLookupError

__all__ = ["EvalInputError", "ModelLookupError"]


class EvalInputError(ValueError):
    """A held-out file that cannot be evaluated (missing, not JSONL, rows without a reference)."""
