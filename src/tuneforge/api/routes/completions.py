"""POST /v1/completions, the legacy endpoint the 0.x CLI's `api completions.create` calls (§9, §10)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from tuneforge.api.deps import current_project
from tuneforge.api.inference import engine_lifespan, get_engine, respond
from tuneforge.api.schemas.inference import CompletionRequest
from tuneforge.serving.openai_completions import create_completion

router = APIRouter(tags=["inference"], lifespan=engine_lifespan)


@router.post("/completions")
async def completions(body: CompletionRequest, request: Request, project: str = Depends(current_project)):
    return await respond(create_completion(get_engine(request), body, project, request.is_disconnected))
