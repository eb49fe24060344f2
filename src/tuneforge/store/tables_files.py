"""Tables for uploaded files, projects and API keys (SQLAlchemy 2 declarative models)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tuneforge.store.db import Base


class Project(Base):
    """A tenant. API keys belong to one project; files, jobs and models are scoped by project name."""

    __tablename__ = "projects"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger)


class ApiKey(Base):
    """An API key, stored as the sha256 of the secret (keys are 256-bit random, so a fast hash is enough)."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project: Mapped[str] = mapped_column(String(64), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # First characters of the secret, so `tuneforge keys list` can show which key is which.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True, default=None)


class FileRecord(Base):
    """An uploaded (or generated) file. The bytes live in the blob store under the file id."""

    __tablename__ = "files"
    __table_args__ = (Index("ix_files_project_pk", "project", "pk"),)

    # Insertion order: the stable sort key of every file list (created_at has one-second resolution).
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)
    project: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="processed")
    status_details: Mapped[str | None] = mapped_column(Text, nullable=True, default=None)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True, default=None)
    # Deleted files keep their row (without bytes) so a list cursor that names one still resolves.
    deleted_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True, default=None)
