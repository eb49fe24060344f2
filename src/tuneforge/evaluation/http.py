"""Evaluation's own small OpenAI-API client (evaluation is an API client and imports nothing of cli/).

The caller resolves the URL and key (the CLI as every other command does); failures become
`EvalServerError` with one line that says what happened and what to do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from tuneforge.evaluation.errors import EvalInputError, EvalServerError


class Server:
    """One OpenAI-compatible endpoint, e.g. `http://127.0.0.1:8000/v1`."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 300.0):
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url + "/", timeout=timeout,
                                  headers={"Authorization": f"Bearer {api_key}"})

    def close(self) -> None:
        self._http.close()

    def post(self, path: str, body: dict) -> httpx.Response:
        """The response, whatever its status; only a server that does not answer raises."""
        try:
            return self._http.post(path.lstrip("/"), json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise EvalServerError(f"no server answers at {self.base_url}; start one with `tuneforge "
                                  "serve` (or point --base-url / OPENAI_BASE_URL at yours)") from exc
        except httpx.TransportError as exc:
            raise EvalServerError(f"lost the connection to {self.base_url} ({exc}); is the server "
                                  "still running?") from exc

    def download(self, file_id: str, dest: Path) -> Path:
        """A file of the server's Files API (`GET /files/{id}/content`) saved at `dest`."""
        try:
            response = self._http.get(f"files/{quote(file_id, safe='')}/content")
        except httpx.TransportError as exc:
            raise EvalServerError(f"no server answers at {self.base_url} ({exc}); start one with `tuneforge "
                                  "serve` (or point --base-url / OPENAI_BASE_URL at yours)") from exc
        if response.status_code == 404:
            raise EvalInputError(f"{file_id}: no such file on {self.base_url} (and no such local path); "
                                 "`tuneforge files list` shows the ids")
        if response.status_code >= 400:
            raise EvalServerError(self.failure(response, ""), response.status_code)
        dest.write_bytes(response.content)
        return dest

    def ok(self, path: str, body: dict) -> Any:
        """The JSON of a successful POST, else `EvalServerError` carrying the server's message."""
        response = self.post(path, body)
        if response.status_code >= 400:
            raise EvalServerError(self.failure(response, body.get("model", "")), response.status_code)
        return response.json()

    def failure(self, response: httpx.Response, model: str) -> str:
        try:
            message = (response.json().get("error") or {}).get("message") or ""
        except (json.JSONDecodeError, AttributeError):
            message = ""
        message = message or response.text.strip()[:300] or response.reason_phrase
        where = str(response.request.url)
        hint = ""
        if response.status_code == 401:
            hint = " Pass a valid key with --api-key or OPENAI_API_KEY."
        elif response.status_code == 404 and model:
            hint = f" Is `{model}` served there? `tuneforge models list` shows the ids."
        return f"{where} answered HTTP {response.status_code} for {model}: {message.rstrip('.')}.{hint}"
