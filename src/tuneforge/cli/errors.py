"""One place that turns expected failures into a one-line message and a non-zero exit, no traceback."""

from __future__ import annotations

import sys

from rich.console import Console

err_console = Console(stderr=True, highlight=False)

# Exception types whose message is already written for the user (what, where, what to do).
USER_ERRORS: list[type[BaseException]] = []


def user_error(cls: type[BaseException]) -> type[BaseException]:
    """Register an exception type as user-facing: the CLI prints its message instead of a traceback."""
    USER_ERRORS.append(cls)
    return cls


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    sys.exit(code)
