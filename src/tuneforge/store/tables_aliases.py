"""Model aliases: another name a project's fine-tuned model answers to (a migrated model's source id).

An alias names a job, not a model row: it is recorded when the migrated job is created and answers as
soon as that job's final model exists, so nothing has to happen when the job succeeds.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from tuneforge.store.db import Base


class ModelAlias(Base):
    __tablename__ = "model_aliases"

    project: Mapped[str] = mapped_column(String(128), primary_key=True)
    id: Mapped[str] = mapped_column(String(512), primary_key=True)  # the alias, e.g. ft:gpt-4o-mini:...
    job_id: Mapped[str] = mapped_column(String(64), index=True)  # whose final model it names
    created: Mapped[int] = mapped_column(BigInteger)
