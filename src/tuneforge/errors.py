"""The one user-facing error type of every layer, translated once (`api/errors.py`) into OpenAI's shape
`{"error": {"message", "type", "param", "code"}}`.

A layer raises `UserError` (or its own subclass) saying what is wrong, where (`param`: the field) and
what to do; the HTTP status and OpenAI's `type` come with it, so no layer below the API knows HTTP.
"""

from __future__ import annotations

# OpenAI's error types by status; anything else is an invalid request.
TYPES = {429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}


class UserError(Exception):
    def __init__(self, message: str, *, status: int = 400, param: str | None = None, code: str | None = None,
                 type: str | None = None, headers: dict[str, str] | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.message, self.status, self.param, self.code = message, status, param, code
        self.type = type or TYPES.get(status, "invalid_request_error")
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        if retry_after is not None:  # what OpenAI's SDKs read to wait before retrying
            seconds = int(retry_after)
            self.headers.update({"Retry-After": str(seconds), "retry-after-ms": str(seconds * 1000)})

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
