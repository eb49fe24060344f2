"""The web app: static HTML/CSS/JS (ES modules, no build step) served by the API server at `/`.

The app calls the public `/v1` API like any other client. Only `/` and `/static/...` belong to it, so
`/v1/...` and `/health` are never shadowed and unknown `/v1` URLs still get OpenAI-shaped 404s.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"

_NO_CACHE = {"Cache-Control": "no-cache"}


class _Static(StaticFiles):
    """StaticFiles that asks browsers to revalidate, so an upgraded server never runs stale modules."""

    def file_response(self, *args, **kwargs):
        response = super().file_response(*args, **kwargs)
        response.headers.update(_NO_CACHE)
        return response


def mount_web(app: FastAPI) -> None:
    """Serve the web app: `GET /` is the page shell, `/static/` its assets."""

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=_NO_CACHE)

    app.mount("/static", _Static(directory=STATIC_DIR), name="web-static")
