"""POST /v1/fine_tuning/alpha/graders/run and /validate (openai-api.md §13; docs/graders.md).

Scoring is `tuneforge.graders`; score_model graders ask the serving engine, as /v1/chat/completions does,
with the caller's project (a model it cannot see: 404 model_not_found). The grader runs in a thread and
each model question is sent back to the event loop, so the engine's async API is used unchanged.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError

from tuneforge.api.deps import current_project
from tuneforge.api.inference import engine_lifespan, get_engine
from tuneforge.api.schemas.common import error_responses
from tuneforge.api.schemas.graders import GraderRunRequest, GraderValidateRequest
from tuneforge.api.schemas.inference import ChatCompletionRequest
from tuneforge.graders import GraderError, chat_fields, run_grader, validate
from tuneforge.serving.openai_chat import create_chat

router = APIRouter(tags=["graders"], lifespan=engine_lifespan)
_USAGE = ("prompt_tokens", "completion_tokens", "total_tokens")


def _chat_request(model: str, messages: list[dict], params: dict) -> ChatCompletionRequest:
    fields = chat_fields(params)
    try:
        return ChatCompletionRequest(model=model, messages=messages, **fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise GraderError(f"score_model sampling_params: {where}: {first.get('msg')}.",
                          "grader.sampling_params") from None


def _asker(request: Request, project: str, loop: asyncio.AbstractEventLoop, usage: dict[str, dict]):
    def ask(model: str, messages: list[dict], params: dict) -> str:
        body = _chat_request(model, messages, params)
        work = create_chat(get_engine(request), body, project, request.is_disconnected)
        answer = asyncio.run_coroutine_threadsafe(work, loop).result()
        counted = usage.setdefault(model, dict.fromkeys(_USAGE, 0))
        for key in _USAGE:
            counted[key] += int((answer.get("usage") or {}).get(key) or 0)
        return answer["choices"][0]["message"]["content"] or ""
    return ask


@router.post("/fine_tuning/alpha/graders/run", responses=error_responses(400, 401, 404))
async def run(body: GraderRunRequest, request: Request, project: str = Depends(current_project)) -> dict:
    usage: dict[str, dict] = {}
    ask = _asker(request, project, asyncio.get_running_loop(), usage)
    out = await asyncio.to_thread(run_grader, body.grader, body.model_sample, body.item, ask)
    if usage:  # score_model graders: the tokens the judge model read and wrote
        out["metadata"]["token_usage"] = sum(u["total_tokens"] for u in usage.values())
        out["model_grader_token_usage_per_model"] = usage
    return out


@router.post("/fine_tuning/alpha/graders/validate", responses=error_responses(400, 401))
async def validate_grader(body: GraderValidateRequest, project: str = Depends(current_project)) -> dict:
    return {"grader": validate(body.grader)}
