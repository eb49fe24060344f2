"""`/v1/models` shapes (reference §7): the Model object, the list, the deletion result."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

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
