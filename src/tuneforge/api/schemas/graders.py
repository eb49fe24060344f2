"""Request bodies of `/v1/fine_tuning/alpha/graders/run` and `/validate` (openai-api.md §13). The grader
itself stays a JSON object here: `tuneforge.graders` validates it and names the bad field."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class GraderRunRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    grader: dict[str, Any]
    model_sample: str = Field(max_length=1_000_000)
    item: Any = None


class GraderValidateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    grader: dict[str, Any]
