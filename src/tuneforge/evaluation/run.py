"""`evaluate(models, heldout)`: every model scored on the same rows, ready for the table and the report."""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tuneforge.evaluation.errors import EvalInputError
from tuneforge.evaluation.loading import load_model
from tuneforge.evaluation.scoring import Prompt, generate_answers, reference_metrics, split_prompt
from tuneforge.evaluation.text import exact_match, rouge_l
from tuneforge.settings import Settings


@dataclass
class ModelScores:
    model: str
    loss: float
    perplexity: float
    token_accuracy: float
    exact_match: float
    rouge_l: float
    answers: list[str]
    per_example: list[dict[str, float]]  # {"exact_match", "rouge_l"} per row
    seconds: float


@dataclass
class EvalResult:
    file: str
    questions: list[str]
    references: list[str]
    models: list[ModelScores] = field(default_factory=list)

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


def score_model(model_id: str, rows: list[dict], prompts: list[Prompt], settings: Settings | None,
                max_new_tokens: int, batch_size: int) -> ModelScores:
    started = time.monotonic()
    model, tokenizer, _local = load_model(model_id, settings)
    metrics = reference_metrics(model, tokenizer, rows, batch_size=batch_size)
    answers = generate_answers(model, tokenizer, prompts, max_new_tokens=max_new_tokens,
                               batch_size=batch_size)
    del model
    gc.collect()
    per = [{"exact_match": exact_match(a, p.reference), "rouge_l": rouge_l(a, p.reference)}
           for a, p in zip(answers, prompts, strict=True)]
    n = len(per)
    return ModelScores(model_id, metrics["loss"], metrics["perplexity"], metrics["token_accuracy"],
                       sum(p["exact_match"] for p in per) / n, sum(p["rouge_l"] for p in per) / n,
                       answers, per, time.monotonic() - started)


def evaluate(model_ids: list[str], path: str | Path, *, settings: Settings | None = None,
             limit: int | None = None, max_new_tokens: int = 128, batch_size: int = 8,
             progress: Callable[[str], None] | None = None) -> EvalResult:
    """Score each model in turn (one in memory at a time) on the same held-out rows."""
    rows = read_rows(Path(path), limit)
    prompts = [split_prompt(row) for row in rows]
    result = EvalResult(str(path), [p.question for p in prompts], [p.reference for p in prompts])
    for model_id in model_ids:
        if progress:
            progress(f"evaluating {model_id} on {len(rows)} examples")
        result.models.append(score_model(model_id, rows, prompts, settings, max_new_tokens, batch_size))
    return result
