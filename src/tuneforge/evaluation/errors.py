"""Evaluation's user-facing errors (kept free of heavy imports: the CLI registers them at startup)."""

__all__ = ["EvalInputError", "EvalServerError"]


class EvalInputError(ValueError):
    """A held-out file that cannot be evaluated (missing, not JSONL, rows without a reference)."""


class EvalServerError(RuntimeError):
    """The server is down, refuses the key, or cannot answer for the model."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status
