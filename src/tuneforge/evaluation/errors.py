"""Evaluation's user-facing errors (kept free of heavy imports: the CLI registers them at startup)."""


class EvalInputError(ValueError):
    """A held-out file that cannot be evaluated (missing, not JSONL, rows without a reference)."""


class ModelLookupError(LookupError):
    """A model id that is neither a base model nor a fine-tuned model on this machine."""
