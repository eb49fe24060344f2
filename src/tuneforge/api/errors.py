"""OpenAI-shaped errors: `{"error": {"message", "type", "param", "code"}}` with OpenAI's status codes.

Any layer raises `tuneforge.errors.UserError` (routes: `APIError` or a helper below);
`install_error_handlers` turns it, FastAPI's validation errors and any unexpected exception into that
shape. Unexpected exceptions become a 500 with
no traceback in the body (it goes to the server log).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tuneforge.errors import UserError

log = logging.getLogger("tuneforge.api")

class APIError(UserError):
    """A `UserError` raised by the HTTP layer itself: status first, as routes read best."""

    def __init__(self, status: int, message: str, **details):
        super().__init__(message, status=status, **details)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def not_found(message: str, param: str | None = "id", code: str | None = None) -> APIError:
    return APIError(404, message, param=param, code=code)


def model_not_found(model: str) -> APIError:
    return APIError(404, f"The model `{model}` does not exist or you do not have access to it.",
                    param="model", code="model_not_found")


def error_response(err: UserError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "form")]
    param = ".".join(loc) or None
    msg = first.get("msg", "Invalid request")
    return (f"Invalid value for '{param}': {msg}." if param else f"Invalid request: {msg}."), param


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UserError)  # every layer's refusals: the one translation
    async def _user_error(_request: Request, exc: UserError):
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError):
        message, param = _validation_message(exc)
        return error_response(APIError(400, message, param=param))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "Request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"Unknown request URL: {_request.method} {_request.url.path}."
        return error_response(APIError(exc.status_code, message))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(APIError(500, "The server had an error while processing your request. "
                                            "See the tuneforge server log for details."))
