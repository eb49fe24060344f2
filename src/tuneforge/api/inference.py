"""The HTTP glue of the inference engine (serving/ knows no FastAPI): create the engine when the API
starts and stop it when the API stops, find it for a request, and turn its answers and errors into
JSON, SSE streams and OpenAI errors.

Both inference routers carry `engine_lifespan`; FastAPI runs it inside the app's own lifespan, so the
engine exists before the first request. `app.state.engine_options` (set before startup) passes keyword
arguments to `InferenceEngine`, e.g. extra `resolvers` in tests. Limits come from the settings:
`max_batch` (rows decoded together), `max_queued` (requests before 429), `max_adapters` (LoRA adapters
kept loaded per base).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sse_starlette.sse import EventSourceResponse

from tuneforge.api.errors import APIError
from tuneforge.serving.engine import InferenceEngine
from tuneforge.serving.params import ClientGone, ServingError
from tuneforge.settings import Settings

log = logging.getLogger("tuneforge.api")


def engine_kwargs(settings: Settings) -> dict:
    return {"max_batch_rows": settings.max_batch, "max_queued": settings.max_queued,
            "max_adapters": settings.max_adapters}


async def start_engine(app) -> None:
    """Startup hook: `app.state.engine` (idempotent, so both routers may ask for it)."""
    if getattr(app.state, "engine", None) is None:
        options = {**engine_kwargs(app.state.settings), **getattr(app.state, "engine_options", {})}
        app.state.engine = InferenceEngine(app.state.settings, db=app.state.db, **options)


async def stop_engine(app) -> None:
    engine = getattr(app.state, "engine", None)
    if engine is not None:
        app.state.engine = None
        engine.close()


@asynccontextmanager
async def engine_lifespan(app):
    owner = getattr(app.state, "engine", None) is None
    await start_engine(app)
    try:
        yield
    finally:
        if owner:
            await stop_engine(app)


def get_engine(request: Request) -> InferenceEngine:
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        raise APIError(503, "The inference engine is not running; restart `tuneforge serve`.")
    return engine


async def respond(work):
    """Await an endpoint's work: a dict becomes JSON, an async iterator becomes an SSE stream that ends
    with `data: [DONE]`. Engine errors are `UserError`s, answered by the app's one handler
    (mid-stream: an `error` event with the same body)."""
    try:
        result = await work
    except ClientGone:
        log.info("client disconnected before its answer was ready")
        return Response(status_code=499)
    if isinstance(result, dict):
        return JSONResponse(result)
    return EventSourceResponse(_events(result), sep="\n", ping=15)


async def _events(chunks: AsyncIterator[dict]):
    try:
        async for chunk in chunks:
            yield {"data": json.dumps(chunk, ensure_ascii=False)}
    except ServingError as exc:
        yield {"data": json.dumps(exc.body())}  # mid-stream: the same OpenAI shape, as an event
    except asyncio.CancelledError:  # the client went away mid-stream: one line, no traceback
        log.info("client disconnected mid-stream")
        raise
    yield {"data": "[DONE]"}
