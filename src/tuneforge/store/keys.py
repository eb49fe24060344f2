"""API keys and projects. A key's secret is shown once, at creation; only its sha256 is stored."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select

from tuneforge.store.db import Database
from tuneforge.store.tables_files import ApiKey, Project

KEY_PREFIX = "sk-tf-"
_PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class KeyStoreError(ValueError):
    """A key operation the user asked for cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class KeyInfo:
    id: str
    project: str
    prefix: str
    created_at: int
    revoked_at: int | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def mask_key(secret: str) -> str:
    """`sk-tf-abc***xyz`, the way OpenAI echoes a wrong key back."""
    return secret[:9] + "***" + secret[-4:] if len(secret) > 16 else "***"


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(id=row.id, project=row.project, prefix=row.prefix, created_at=row.created_at,
                   revoked_at=row.revoked_at)


class KeyStore:
    def __init__(self, db: Database):
        self.db = db

    def create(self, project: str) -> tuple[KeyInfo, str]:
        """A new key for `project` (created if new). Returns the key's info and its secret."""
        if not _PROJECT_NAME.match(project):
            raise KeyStoreError(f"invalid project name {project!r}: use 1-64 letters, digits, '.', '_' "
                            f"or '-', starting with a letter or digit.")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        now = int(time.time())
        row = ApiKey(id="key_" + secrets.token_hex(8), project=project, key_hash=hash_key(secret),
                     prefix=secret[:10], created_at=now)
        with self.db.session() as s:
            if s.get(Project, project) is None:
                s.add(Project(name=project, created_at=now))
            s.add(row)
        return _info(row), secret

    def list(self) -> list[KeyInfo]:
        with self.db.session() as s:
            return [_info(r) for r in s.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id))]

    def revoke(self, key_id: str) -> KeyInfo:
        """Revoke by key id (`key_...`) or by the secret itself."""
        now = int(time.time())
        if "\x00" in key_id:
            raise KeyStoreError("a key id cannot contain a NUL byte. See `tuneforge keys list` for the ids.")
        with self.db.session() as s:
            row = s.get(ApiKey, key_id) or s.scalars(
                select(ApiKey).where(ApiKey.key_hash == hash_key(key_id))).first()
            if row is None:
                raise KeyStoreError(f"no API key with id {key_id!r}. See `tuneforge keys list` for the ids.")
            if row.revoked_at is None:
                row.revoked_at = now
            return _info(row)

    def any_active(self) -> bool:
        """True once any unrevoked key exists: from then on every request must carry a valid key."""
        with self.db.session() as s:
            active = select(ApiKey.id).where(ApiKey.revoked_at.is_(None)).limit(1)
            return s.scalars(active).first() is not None

    def project_for(self, secret: str) -> str | None:
        """The project of an active key, or None for an unknown or revoked one."""
        with self.db.session() as s:
            return s.scalars(select(ApiKey.project).where(
                ApiKey.key_hash == hash_key(secret), ApiKey.revoked_at.is_(None))).first()

    def projects(self) -> list[str]:
        with self.db.session() as s:
            return list(s.scalars(select(Project.name).order_by(Project.name)))


def local_caller_project(db: Database, secret: str | None, default: str) -> str:
    """The project a local command (chat, eval) acts for: the project of `secret` (OPENAI_API_KEY) when
    it is an active key, else `default`, as the server decides for a request without keys."""
    return (KeyStore(db).project_for(secret) if secret else None) or default
