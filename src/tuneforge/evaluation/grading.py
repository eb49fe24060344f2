"""OpenAI graders as evaluation metrics (`tuneforge eval --grader FILE`).

A grader file holds one OpenAI grader object or a JSON list of them, validated up front with
`tuneforge.graders.validate` (a bad one is an `EvalInputError` naming the file and the field). Each grader
then scores every model's answer on every held-out row with `tuneforge.graders.run_grader`:

- `{{sample.output_text}}` is the model's answer; `{{item.x}}` a field of the held-out row (the whole JSON
  row), which also has `item.reference` (the reference answer text) and `item.prompt` (the last user
  message of a chat row; a legacy row's own prompt) unless the row has keys of those names itself.
- score_model graders ask their `model` through `/v1/chat/completions` on one judge server (the eval's
  default server), the same for every model compared; `temperature` is 0 unless `sampling_params` say.
- A row the grader cannot score (a template naming a field the row lacks, a judge reply with no number,
  the judge server refusing the request) scores 0 and is counted in `errors`; the run goes on.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneforge.evaluation.errors import EvalInputError, EvalServerError
from tuneforge.evaluation.http import Server
from tuneforge.graders import Ask, GraderError, chat_fields, run_grader, validate

PARALLEL = 4
_FLAGS = {"model_grader_parse_error": "the judge model's reply held no number",
          "model_grader_refusal_error": "the judge model refused"}


@dataclass(frozen=True)
class Grader:
    name: str  # the metric's name: the grader's `name`, else the file's stem
    spec: dict
    source: str  # the file it came from (for messages)


@dataclass
class GraderScore:
    mean: float  # mean reward over all rows, a row in error counting 0
    errors: int
    rewards: list[float]  # per row
    row_errors: list[str | None] = field(default_factory=list)  # per row: why it scored 0, or None

    @property
    def first_error(self) -> str | None:
        return next((e for e in self.row_errors if e), None)


def _read(path: Path) -> Any:
    if not path.is_file():
        raise EvalInputError(f"{path}: no such grader file; pass a JSON file holding an OpenAI grader "
                             "object (or a list of them) with --grader")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvalInputError(f"{path}: not valid JSON ({exc}); a grader file holds one grader object "
                             "or a JSON list of them") from exc


def load_graders(paths: list[Path]) -> list[Grader]:
    """Every grader of every file, validated; names unique."""
    out: list[Grader] = []
    for path in paths:
        data = _read(path)
        listed = isinstance(data, list)
        specs = data if listed else [data]
        if not specs:
            raise EvalInputError(f"{path}: an empty list; put at least one grader object in it")
        for i, spec in enumerate(specs):
            param = f"grader[{i}]" if listed else "grader"
            if isinstance(spec, dict) and "name" not in spec:
                spec = {**spec, "name": f"{path.stem}_{i + 1}" if listed else path.stem}
            try:
                validate(spec)
            except GraderError as exc:
                where = (exc.param or "grader").replace("grader", param, 1)
                raise EvalInputError(f"{path}: {where}: {exc.message}") from None
            out.append(Grader(spec["name"], spec, str(path)))
    seen: dict[str, str] = {}
    for g in out:
        if g.name in seen:
            raise EvalInputError(f"two graders are named '{g.name}' ({seen[g.name]}, {g.source}); give each "
                                 "its own \"name\": it names the metric")
        seen[g.name] = g.source
    return out


def needs_model(spec: dict) -> bool:
    if spec["type"] == "multi":
        graders = spec["graders"]
        subs = [graders] if "type" in graders else graders.values()
        return any(needs_model(s) for s in subs)
    return spec["type"] == "score_model"


def item_of(row: dict, reference: str, prompt: str) -> dict:
    """What `{{item.x}}` sees: the row, plus `reference` and `prompt` where it has no such keys."""
    return {"reference": reference, "prompt": prompt, **row}


def judge(server: Server) -> Ask:
    """score_model's `ask`: the judge model's greedy (unless told otherwise) reply from `server`."""

    def ask(model: str, messages: list[dict], params: dict) -> str:
        body = {"model": model, "messages": messages, "temperature": 0, **chat_fields(params)}
        out = server.ok("chat/completions", body)
        return (out["choices"][0]["message"].get("content") or "").strip()

    return ask


def _one(grader: Grader, answer: str, item: dict, ask: Ask | None) -> tuple[float, str | None]:
    try:
        out = run_grader(grader.spec, answer, item, ask)
    except GraderError as exc:
        return 0.0, exc.message
    except EvalServerError as exc:
        if exc.status is None:  # the judge server is gone: not a row's fault
            raise
        return 0.0, str(exc)
    flags = [text for flag, text in _FLAGS.items() if out["metadata"]["errors"].get(flag)]
    return (0.0, "; ".join(flags)) if flags else (float(out["reward"]), None)


def grade(graders: list[Grader], answers: list[str], items: list[dict], ask: Ask | None) \
        -> dict[str, GraderScore]:
    """Each grader's score of `answers` (one per item)."""
    scores = {}
    with ThreadPoolExecutor(PARALLEL) as pool:
        for grader in graders:
            results = list(pool.map(lambda pair, g=grader: _one(g, pair[0], pair[1], ask),
                                    zip(answers, items, strict=True)))
            rewards = [r for r, _ in results]
            errors = [e for _, e in results]
            scores[grader.name] = GraderScore(sum(rewards) / max(len(rewards), 1),
                                              sum(e is not None for e in errors), rewards, errors)
    return scores
