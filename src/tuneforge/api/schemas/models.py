"""`/v1/models` shapes (reference §7): the Model object, the list, the deletion result."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tuneforge.api.schemas.common import DeletedObject


class ModelObject(BaseModel):
    """OpenAI's Model (`created`, not `created_at`). `root`/`parent` say what an alias or a fine-tuned
    model is built on, as the 0.x API's Model did; clients ignore fields they do not know."""

    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    root: str | None = None
    parent: str | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


class ModelDeleted(DeletedObject):
    object: Literal["model"] = "model"


class AliasCreate(BaseModel):
    """tuneforge's extension `PUT /v1/models/{alias}`: the alias answers for this job's final model."""

    model_config = ConfigDict(extra="forbid")
    job: str = Field(..., min_length=1, max_length=200,
                     description="The job (ftjob-...) whose final model it names.")


class AliasObject(BaseModel):
    id: str
    object: Literal["model.alias"] = "model.alias"
    job: str
    model: str | None = Field(None, description="The fine-tuned model it answers for; null until the job "
                                                "succeeds.")
    created: int
