"""Parity before the switch: the source model's own answers to the user's prompts, asked while it still
answers, stored on the target as a JSONL file of reference answers (purpose `user_data`) that
`tuneforge eval` scores the migrated model, and the source model itself, against.

The prompts are a JSONL file the user gives, or (`--capture validation`) the job's validation file. A
chat row (`messages`) is asked through chat completions with the conversation before its last assistant
turn; a legacy row (`prompt`) through completions. Each answer is greedy (temperature 0). The stored row
is the prompt with the source's answer in place of the original one: an ordinary held-out file.

The capture is for evaluation: the docs say not to train on another provider's outputs where its terms
forbid it. A file of the same source model, prompts and token cap already on the target is reused, so a
second run asks nothing; an upload is committed whole, so Ctrl-C leaves no partial capture.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import openai

from tuneforge.migrate import CAPTURE_VALIDATION
from tuneforge.migrate.errors import MigrateError, describe
from tuneforge.migrate.source import SourceJob

PURPOSE = "user_data"
PARALLEL = 4  # answers asked at once: the source batches them


@dataclass
class Captured:
    file_id: str
    answers: int
    reused: bool


def prompt_rows(data: bytes, where: str) -> list[dict]:
    """The rows of a prompts file, each reduced to what is asked; errors name the line and the fix."""
    rows = []
    for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MigrateError(f"{where}, line {n}: not valid JSON ({exc.msg})") from None
        asked = _asked(row)
        if asked is None:
            raise MigrateError(f"{where}, line {n}: a prompt row needs `messages` (a chat conversation) or "
                               "`prompt` (legacy text); check it with `tuneforge prepare -f FILE`")
        rows.append(asked)
    if not rows:
        raise MigrateError(f"{where}: no prompts in it; it must hold JSONL chat or prompt rows")
    return rows


def _asked(row: object) -> dict | None:
    """A chat row up to (not including) its last assistant turn, or a legacy row's prompt."""
    if not isinstance(row, dict):
        return None
    if isinstance(row.get("input"), dict):  # a preference-pair row: its input is the conversation
        row = {**row["input"]}
    messages = row.get("messages")
    if isinstance(messages, list) and messages and all(isinstance(m, dict) for m in messages):
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
        context = messages[:last] if last is not None and last == len(messages) - 1 else messages
        if not context:
            return None
        extra = {k: row[k] for k in ("tools", "parallel_tool_calls", "functions") if k in row}
        return {"messages": context, **extra}
    if isinstance(row.get("prompt"), str):
        return {"prompt": row["prompt"]}
    return None


class Capturer:
    """Asks the source models and stores their answers on the target, once per model and prompts."""

    def __init__(self, source: openai.OpenAI, target: openai.OpenAI, prompts_file: str, max_tokens: int):
        self.source, self.target, self.max_tokens = source, target, max_tokens
        self.own_prompts: tuple[bytes, str] | None = None
        if prompts_file != CAPTURE_VALIDATION:
            path = Path(prompts_file)
            if not path.is_file():
                raise MigrateError(f"--capture {prompts_file}: no such file; pass a JSONL file of prompts, "
                                   "or --capture validation to use each job's validation file")
            data = path.read_bytes()
            prompt_rows(data, str(path))  # fail before anything is written
            self.own_prompts = (data, str(path))

    def plan(self, job: SourceJob) -> str:
        """What will be asked of `job`'s model, for the plan."""
        if self.own_prompts is not None:
            return f"capture its answers to {self.own_prompts[1]}"
        if job.file("validation") is None:
            return "no capture: it has no validation file (pass --capture PROMPTS.jsonl)"
        return "capture its answers to the validation file's prompts"

    def capture(self, job: SourceJob, target_job: dict | None, say: Callable[[str], None]) -> Captured | None:
        """The target file holding the answers of `job`'s model (None: nothing to ask it)."""
        model = job.fine_tuned_model or ""
        prompts = self._prompts(job, target_job)
        if prompts is None:
            say("  parity: no validation file to take prompts from; pass --capture PROMPTS.jsonl")
            return None
        data, where = prompts
        rows = prompt_rows(data, where)
        key = hashlib.sha256(json.dumps([model, self.max_tokens]).encode() + data).hexdigest()[:12]
        name = f"parity-{job.id}-{key}.jsonl"
        found = next((f for f in self.target.files.list() if f.filename == name and f.purpose == PURPOSE),
                     None)
        if found is not None:
            say(f"  parity: already captured as {found.id}, skipped")
            return Captured(found.id, len(rows), True)
        say(f"  parity: asking {model} for its answers to {len(rows)} prompts from {where}")
        with ThreadPoolExecutor(PARALLEL) as pool:
            answered = list(pool.map(lambda r: self._answer(model, r), rows))
        body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in answered).encode()
        try:
            obj = self.target.files.create(file=(name, body), purpose=PURPOSE)
        except openai.APIError as exc:
            raise MigrateError(f"storing the captured answers on the target failed: {describe(exc)}") \
                from None
        say(f"  parity: {len(rows)} answers stored as {obj.id}")
        return Captured(obj.id, len(rows), False)

    def _prompts(self, job: SourceJob, target_job: dict | None) -> tuple[bytes, str] | None:
        if self.own_prompts is not None:
            return self.own_prompts
        validation = job.file("validation")
        if validation is None:
            return None
        try:
            return self.source.files.content(validation.id).read(), f"validation file {validation.id}"
        except openai.NotFoundError:
            copy = (target_job or {}).get("validation_file")
            if not copy:
                raise MigrateError(f"its validation file {validation.id} no longer exists on the source; "
                                   "pass --capture PROMPTS.jsonl") from None
            return self.target.files.content(copy).read(), f"validation file {copy} (the target's copy)"
        except openai.APIError as exc:
            raise MigrateError(f"reading validation file {validation.id} for the capture failed: "
                               f"{describe(exc)}") from None

    def _answer(self, model: str, row: dict) -> dict:
        try:
            if "prompt" in row:
                done = self.source.completions.create(model=model, prompt=row["prompt"], temperature=0,
                                                      max_tokens=self.max_tokens)
                return {"prompt": row["prompt"], "completion": done.choices[0].text}
            extra = {k: row[k] for k in ("tools", "parallel_tool_calls", "functions") if k in row}
            reply = self.source.chat.completions.create(model=model, messages=row["messages"], temperature=0,
                                                        max_tokens=self.max_tokens, **extra)
        except openai.NotFoundError as exc:
            raise MigrateError(f"the source no longer serves {model} ({describe(exc)}); a capture needs the "
                               "source model answering") from None
        except openai.APIError as exc:
            raise MigrateError(f"asking {model} on the source failed: {describe(exc)}") from None
        message = reply.choices[0].message.model_dump(exclude_none=True)
        answer = {"role": "assistant", "content": message.get("content") or ""}
        if message.get("tool_calls"):
            answer["tool_calls"] = message["tool_calls"]
        return {**row, "messages": [*row["messages"], answer]}
