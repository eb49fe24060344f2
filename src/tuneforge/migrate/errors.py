"""The one error `tuneforge migrate` stops on (the CLI prints it as one line and exits non-zero)."""

from __future__ import annotations


class MigrateError(Exception):
    """Migration cannot start or go on: what is wrong and what to do."""


def describe(exc: BaseException) -> str:
    """An SDK error as one line: the server's message and status, or the network trouble."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        err = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
        message = err.get("message") or exc.message
        return f"{str(message).rstrip('.')} (HTTP {exc.status_code})"
    if isinstance(exc, openai.APITimeoutError):
        return f"timed out talking to {exc.request.url.host} (after the SDK's retries)"
    if isinstance(exc, openai.APIConnectionError):
        url = exc.request.url
        return f"could not reach {url.host}:{url.port or ''} (after the SDK's retries)"
    return str(exc) or type(exc).__name__
