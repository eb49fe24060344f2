"""`evaluate(targets, heldout)`: every served model scored on the same rows, ready for the table and the
report. Each target is a model id on an OpenAI-compatible server; models may live on different servers."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tuneforge.data.language import language_of
from tuneforge.evaluation.errors import EvalInputError
from tuneforge.evaluation.grading import Grader, GraderScore, grade, item_of, judge, needs_model
from tuneforge.evaluation.http import Server
from tuneforge.evaluation.scoring import (
    Prompt,
    ReferenceScore,
    Unavailable,
    answer,
    answer_budget,
    score_reference,
    split_prompt,
)
from tuneforge.evaluation.text import exact_match, rouge_l

# Requests in flight per model: the server batches them; more mostly queues.
PARALLEL = 4
REFERENCE_METRICS = ("loss", "perplexity", "token_accuracy")


@dataclass(frozen=True)
class Target:
    model: str
    base_url: str  # e.g. http://127.0.0.1:8000/v1
    api_key: str = "tuneforge"


@dataclass
class ModelScores:
    model: str
    base_url: str
    loss: float | None  # None: the server could not score text (see `unavailable`)
    perplexity: float | None
    token_accuracy: float | None
    exact_match: float
    rouge_l: float
    answers: list[str]
    per_example: list[dict[str, float]]  # {"exact_match", "rouge_l"} per row
    seconds: float
    unavailable: str | None = None  # why loss/perplexity/token accuracy are missing
    reference_tokens: int = 0
    graders: dict[str, GraderScore] = field(default_factory=dict)  # --grader metrics, by grader name
    # {"en": {"examples", "exact_match", "rouge_l"}, "zh": ...}: the answers' scores per row language
    by_language: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass
class EvalResult:
    file: str
    questions: list[str]
    references: list[str]
    models: list[ModelScores] = field(default_factory=list)
    graders: list[str] = field(default_factory=list)  # the grader metrics' names, in column order
    languages: list[str] = field(default_factory=list)  # each row's language (data.language), in row order

    def language_codes(self) -> list[str]:
        """The rows' languages, most rows first; per-language figures are shown when there are two or more."""
        return [code for code, _ in Counter(self.languages).most_common()]

    def best(self, metric: str = "rouge_l") -> ModelScores:
        return max(self.models, key=lambda m: getattr(m, metric))

    def to_json(self) -> dict:
        return asdict(self)


def read_rows(path: Path, limit: int | None = None) -> list[dict]:
    """The JSONL rows of `path`, each with a reference answer; errors name the line and the fix."""
    if not path.is_file():
        raise EvalInputError(f"{path}: no such file; pass a held-out JSONL file with -f")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalInputError(f"{path}, line {n}: not valid JSON ({exc.msg}); "
                                     f"check it with `tuneforge prepare -f {path}`") from exc
            try:
                split_prompt(row)
            except (ValueError, AttributeError, TypeError) as exc:
                raise EvalInputError(f"{path}, line {n}: {exc}; each row needs a reference answer "
                                     "(a final assistant message, or a completion)") from exc
            rows.append(row)
            if limit and len(rows) >= limit:
                break
    if not rows:
        raise EvalInputError(f"{path}: no rows to evaluate; it must hold JSONL chat or "
                             "prompt/completion rows")
    return rows


def _references(server: Server, model: str, prompts: list[Prompt], pool) -> list[ReferenceScore] | str:
    """Each row's reference score, or why the server cannot give them (probed on the first row)."""
    try:
        first = score_reference(server, model, prompts[0])
        rest = list(pool.map(lambda p: score_reference(server, model, p), prompts[1:]))
    except Unavailable as exc:
        return str(exc)
    return [first, *rest]


def score_model(target: Target, prompts: list[Prompt], max_new_tokens: int) -> ModelScores:
    started = time.monotonic()
    server = Server(target.base_url, target.api_key)
    try:
        with ThreadPoolExecutor(PARALLEL) as pool:
            refs = _references(server, target.model, prompts, pool)
            scored = not isinstance(refs, str)
            budgets = [answer_budget(p.reference, refs[i].tokens if scored else None, max_new_tokens)
                       for i, p in enumerate(prompts)]
            answers = list(pool.map(lambda i: answer(server, target.model, prompts[i], budgets[i], scored),
                                    range(len(prompts))))
    finally:
        server.close()
    per = [{"exact_match": exact_match(a, p.reference), "rouge_l": rouge_l(a, p.reference)}
           for a, p in zip(answers, prompts, strict=True)]
    n = len(per)
    scores = ModelScores(target.model, server.base_url, None, None, None,
                         sum(p["exact_match"] for p in per) / n, sum(p["rouge_l"] for p in per) / n,
                         answers, per, 0.0)
    if scored:
        tokens = sum(r.tokens for r in refs)
        scores.loss = sum(r.nll for r in refs) / tokens
        scores.perplexity = math.exp(min(scores.loss, 50.0))
        scores.token_accuracy = sum(r.correct for r in refs) / tokens
        scores.reference_tokens = tokens
    else:
        scores.unavailable = refs
    scores.seconds = time.monotonic() - started
    return scores


def row_language(prompt: Prompt) -> str:
    """A row's language is its reference answer's (its question's when the answer has no letters)."""
    code = language_of(prompt.reference)
    return code if code != "other" else language_of(prompt.question)


def by_language(per_example: list[dict[str, float]], languages: list[str]) -> dict[str, dict[str, float]]:
    """Mean exact match and ROUGE-L over the rows of each language."""
    groups: dict[str, list[dict[str, float]]] = {}
    for scores, code in zip(per_example, languages, strict=True):
        groups.setdefault(code, []).append(scores)
    return {code: {"examples": len(rows),
                   "exact_match": sum(r["exact_match"] for r in rows) / len(rows),
                   "rouge_l": sum(r["rouge_l"] for r in rows) / len(rows)} for code, rows in groups.items()}


def evaluate(targets: list[Target], path: str | Path, *, limit: int | None = None,
             max_new_tokens: int = 128, progress: Callable[[str], None] | None = None,
             label: str | None = None, graders: list[Grader] | None = None,
             judge_at: Target | None = None) -> EvalResult:
    """Score each target in turn on the same held-out rows (`label` names them in the report, default
    the path). `graders` score every answer too; score_model graders ask their model at `judge_at`'s
    server (default: the first target's), the same judge for every target."""
    rows = read_rows(Path(path), limit)
    prompts = [split_prompt(row) for row in rows]
    graders = graders or []
    result = EvalResult(label or str(path), [p.question for p in prompts], [p.reference for p in prompts],
                        graders=[g.name for g in graders], languages=[row_language(p) for p in prompts])
    items = [item_of(row, p.reference, p.question) for row, p in zip(rows, prompts, strict=True)]
    where = judge_at or (targets[0] if targets else None)
    judge_server = Server(where.base_url, where.api_key) if where and any(
        needs_model(g.spec) for g in graders) else None
    try:
        for target in targets:
            if progress:
                progress(f"evaluating {target.model} at {target.base_url} on {len(rows)} examples")
            scores = score_model(target, prompts, max_new_tokens)
            scores.by_language = by_language(scores.per_example, result.languages)
            if scores.unavailable and progress:
                progress(f"loss, perplexity and token accuracy unavailable for {target.model}: "
                         f"{scores.unavailable}")
            if graders:
                if progress:
                    progress(f"grading {target.model}'s answers with {', '.join(result.graders)}")
                started = time.monotonic()
                scores.graders = grade(graders, scores.answers, items,
                                       judge(judge_server) if judge_server else None)
                scores.seconds += time.monotonic() - started
            result.models.append(scores)
    finally:
        if judge_server:
            judge_server.close()
    return result
