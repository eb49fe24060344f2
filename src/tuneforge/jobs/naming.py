"""Ids and model names in OpenAI's formats (reference §6.2, §6.3, §6.4, §11.1)."""

from __future__ import annotations

import re
import secrets
import string
import time
from datetime import UTC, datetime

_ALNUM = string.ascii_letters + string.digits
_SUFFIX_BAD = re.compile(r"[^A-Za-z0-9._-]+")


def random_id(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def new_job_id(legacy: bool = False) -> str:
    return ("ft-" if legacy else "ftjob-") + random_id(24)


def new_event_id(legacy: bool = False) -> str:
    return ("ftevt-" if legacy else "ftevent-") + random_id(24)


def new_checkpoint_id() -> str:
    return "ftckpt_" + random_id(24)


def now() -> int:
    return int(time.time())


def clean_suffix(suffix: str | None, *, legacy: bool = False) -> str | None:
    """Make a suffix safe inside a `:`-separated model id. The legacy API lower-cased it and turned
    punctuation into `-` (40 chars max); the current one keeps case (64 chars max)."""
    if not suffix:
        return None
    cleaned = _SUFFIX_BAD.sub("-", suffix).strip("-")
    if legacy:
        cleaned = cleaned.lower()[:40]
    return cleaned[:64] or None


def fine_tuned_model_id(base: str, org: str, suffix: str | None, job_id: str) -> str:
    """`ft:<base>:<org>:<suffix>:<8 chars of the job id>`; an empty suffix stays empty (`org::id`)."""
    return f"ft:{base}:{org}:{suffix or ''}:{job_id[-8:]}"


def checkpoint_model_id(final_id: str, step: int) -> str:
    return f"{final_id}:ckpt-step-{step}"


def legacy_model_id(base: str, org: str, suffix: str | None, created_at: int) -> str:
    """`<base>:ft-<org>:<suffix>-<YYYY-MM-DD-HH-MM-SS>` (or `<base>:ft-<org>-<stamp>` without a suffix)."""
    stamp = datetime.fromtimestamp(created_at, UTC).strftime("%Y-%m-%d-%H-%M-%S")
    return f"{base}:ft-{org}:{suffix}-{stamp}" if suffix else f"{base}:ft-{org}-{stamp}"
