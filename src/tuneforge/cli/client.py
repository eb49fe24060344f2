"""The one place the CLI builds its API client: base URL and key from options or the `openai` SDK's env vars.

Every server-backed command takes `--base-url`/`--api-key` (see `BaseUrlOpt`/`ApiKeyOpt`) and calls
`make_client(...)`. Failures become `ServerDown` or `APIFailure`, registered as user errors, so the CLI
prints one line with the fix and exits non-zero instead of a traceback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from tuneforge.cli.errors import user_error

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"

BaseUrlOpt = Annotated[str | None, typer.Option(
    "--base-url", help="tuneforge API URL (env OPENAI_BASE_URL or OPENAI_API_BASE; default "
    f"{DEFAULT_BASE_URL})", rich_help_panel="Server", show_default=False)]
ApiKeyOpt = Annotated[str | None, typer.Option(
    "--api-key", help="API key sent as a Bearer token (env OPENAI_API_KEY)", rich_help_panel="Server",
    show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON (for scripts).")]


@user_error
class ServerDown(Exception):
    """No server answered at the configured URL."""


@user_error
class APIFailure(Exception):
    """The server answered with an OpenAI-style error."""

    def __init__(self, message: str, status: int, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


def resolve_base_url(base_url: str | None = None, environ: dict[str, str] | None = None) -> str:
    """--base-url, else OPENAI_BASE_URL (SDK >= 1), else OPENAI_API_BASE (0.x SDK), else the local default.

    A URL given without a path (http://host:8000) gets `/v1`, as every OpenAI path lives under it.
    """
    env = os.environ if environ is None else environ
    url = base_url or env.get("OPENAI_BASE_URL") or env.get("OPENAI_API_BASE") or DEFAULT_BASE_URL
    url = url.rstrip("/")
    if httpx.URL(url).path in ("", "/"):
        url += "/v1"
    return url


def resolve_api_key(api_key: str | None = None, environ: dict[str, str] | None = None) -> str:
    # A server with no keys configured accepts any Bearer token, as the SDK insists on sending one.
    env = os.environ if environ is None else environ
    return api_key or env.get("OPENAI_API_KEY") or "tuneforge"


class Client:
    """A thin httpx wrapper that speaks the OpenAI `/v1` API and raises user-facing errors."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 60.0):
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url + "/", timeout=timeout,
                                  headers={"Authorization": f"Bearer {api_key}"})

    def close(self) -> None:
        self._http.close()

    def _down(self) -> ServerDown:
        return ServerDown(f"no tuneforge server at {self.base_url}; start one with `tuneforge serve` "
                          "(or point --base-url / OPENAI_BASE_URL at yours)")

    def request(self, method: str, path: str, *, not_found_hint: str = "", **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path.lstrip("/"), **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise self._down() from exc
        except httpx.TransportError as exc:
            raise ServerDown(f"lost the connection to {self.base_url} ({exc}); is `tuneforge serve` "
                             "still running?") from exc
        if response.status_code >= 400:
            raise _failure(response, not_found_hint)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs).json()

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs).json()

    def content(self, path: str, **kwargs: Any) -> bytes:
        return self.request("GET", path, **kwargs).content

    def stream(self, path: str, body: dict) -> Iterator[dict]:
        """POST `body` with `stream: true` and yield each server-sent event's JSON until `[DONE]`."""
        try:
            with self._http.stream("POST", path.lstrip("/"), json={**body, "stream": True}) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _failure(response, "")
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[len("data:"):].strip()
                    if data == "[DONE]":
                        return
                    event = json.loads(data)
                    if "error" in event:  # an error after the stream started
                        raise APIFailure(event["error"].get("message") or "stream failed", 500)
                    yield event
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise self._down() from exc

    def list_all(self, path: str, params: dict | None = None, page_size: int = 100) -> Iterator[dict]:
        """Every item of a cursor-paginated list, following `has_more`/`after` as the SDK does."""
        params = dict(params or {})
        params.setdefault("limit", page_size)
        while True:
            page = self.get(path, params=params)
            data = page.get("data") or []
            yield from data
            if not page.get("has_more") or not data:
                return
            params["after"] = data[-1]["id"]

    def upload(self, path: Path, purpose: str = "fine-tune") -> dict:
        with path.open("rb") as fh:
            return self.post("files", files={"file": (path.name, fh)}, data={"purpose": purpose})


def _failure(response: httpx.Response, not_found_hint: str) -> APIFailure:
    try:
        err = response.json().get("error") or {}
    except (json.JSONDecodeError, AttributeError):
        err = {}
    message = err.get("message") or response.text.strip()[:300] or response.reason_phrase
    if response.status_code == 404 and not_found_hint:
        message = f"{message.rstrip('.')}. {not_found_hint}"
    elif response.status_code == 401:
        message = f"{message.rstrip('.')}. Pass a valid key with --api-key or OPENAI_API_KEY."
    return APIFailure(f"{message} (HTTP {response.status_code})", response.status_code, err.get("code"))


def make_client(base_url: str | None = None, api_key: str | None = None, timeout: float = 60.0) -> Client:
    return Client(resolve_base_url(base_url), resolve_api_key(api_key), timeout=timeout)


def server_running(base_url: str | None = None) -> bool:
    """Whether a server answers at the URL (used by commands that merely enrich their output with it)."""
    try:
        httpx.get(resolve_base_url(base_url) + "/models", timeout=1.5,
                  headers={"Authorization": f"Bearer {resolve_api_key()}"})
    except httpx.TransportError:
        return False
    return True


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))
