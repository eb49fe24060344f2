"""POST /v1/chat/completions (openai-api.md §8, §10)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from tuneforge.api.deps import current_project
from tuneforge.api.inference import engine_lifespan, get_engine, respond
from tuneforge.api.schemas.inference import ChatCompletionRequest
from tuneforge.serving.openai_chat import create_chat

router = APIRouter(tags=["inference"], lifespan=engine_lifespan)


@router.post("/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request,
                           project: str = Depends(current_project)):
    return await respond(create_chat(get_engine(request), body, project, request.is_disconnected))
