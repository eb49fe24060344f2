"""Validating OpenAI's grader JSON (openai-api.md §13): each type's fields, and what tuneforge refuses.

`validate(grader)` returns the grader as given (so `/graders/validate` can echo it) or raises
`GraderError` naming the field, e.g. `grader.graders.b.operation`.
"""

from __future__ import annotations

from typing import Any

from tuneforge.graders import formula, templates
from tuneforge.graders.errors import GraderError
from tuneforge.graders.metrics import METRICS

TYPES = ("string_check", "text_similarity", "score_model", "multi", "python", "label_model")
OPERATIONS = ("eq", "ne", "like", "ilike")
EVALUATION_METRICS = ("cosine", *METRICS)
ROLES = ("user", "assistant", "system", "developer")
REFUSED = {
    "python": "python graders are not supported: tuneforge does not run user code on the server. Use "
              "string_check, text_similarity, score_model or multi.",
    "label_model": "label_model graders are not supported: tuneforge does not run user code or "
                   "classification evals on the server. Use score_model (a number) or string_check instead.",
}


def _field(grader: dict, key: str, param: str, kind: type | tuple = str, required: bool = True) -> Any:
    value = grader.get(key)
    if value is None:
        if required:
            raise GraderError(f"'{key}' is required for a {grader.get('type')} grader.", f"{param}.{key}")
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise GraderError(f"'{key}' must be a {name}, not {type(value).__name__}.", f"{param}.{key}")
    return value


def _choice(grader: dict, key: str, param: str, choices: tuple) -> str:
    value = _field(grader, key, param)
    if value not in choices:
        raise GraderError(f"'{key}' must be one of {', '.join(choices)}; got '{value}'.", f"{param}.{key}")
    return value


def validate(grader: Any, param: str = "grader", nested: bool = False) -> dict:
    if not isinstance(grader, dict):
        raise GraderError("A grader must be a JSON object with a 'type'.", param)
    kind = grader.get("type")
    if kind not in TYPES:
        raise GraderError(f"'type' must be one of {', '.join(TYPES)}; got {kind!r}.", f"{param}.type")
    if kind in REFUSED:
        raise GraderError(REFUSED[kind], f"{param}.type", code="unsupported_grader")
    _field(grader, "name", param)
    if kind == "multi" and nested:
        raise GraderError("A multi grader cannot contain another multi grader.", f"{param}.type")
    {"string_check": _string_check, "text_similarity": _text_similarity, "score_model": _score_model,
     "multi": _multi}[kind](grader, param)
    return grader


def _string_check(grader: dict, param: str) -> None:
    for key in ("input", "reference"):
        templates.check(_field(grader, key, param), f"{param}.{key}")
    _choice(grader, "operation", param, OPERATIONS)


def _text_similarity(grader: dict, param: str) -> None:
    for key in ("input", "reference"):
        templates.check(_field(grader, key, param), f"{param}.{key}")
    if _choice(grader, "evaluation_metric", param, EVALUATION_METRICS) == "cosine":
        raise GraderError("evaluation_metric 'cosine' is not supported: it needs an embedding model, and "
                          "tuneforge serves none. Use fuzzy_match, bleu, gleu, meteor or rouge_*.",
                          f"{param}.evaluation_metric", code="unsupported_grader")


def _score_model(grader: dict, param: str) -> None:
    _field(grader, "model", param)
    messages = _field(grader, "input", param, list)
    if not messages:
        raise GraderError("'input' needs at least one message.", f"{param}.input")
    for i, message in enumerate(messages):
        where = f"{param}.input.{i}"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise GraderError(f"Each input message needs a 'role' among {', '.join(ROLES)}.", f"{where}.role")
        for j, text in enumerate(content_texts(message.get("content"), where)):
            templates.check(text, f"{where}.content" + (f".{j}" if j else ""))
    bounds = _field(grader, "range", param, list, required=False)
    numbers = bounds is not None and all(type(b) in (int, float) for b in bounds)
    if bounds is not None and (len(bounds) != 2 or not numbers or bounds[0] >= bounds[1]):
        raise GraderError("'range' must be [low, high] with low < high, e.g. [0, 1].", f"{param}.range")
    _field(grader, "sampling_params", param, dict, required=False)


def content_texts(content: Any, where: str) -> list[str]:
    """The text parts of a message's content: a string, or a list of `input_text`/`output_text` parts."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        raise GraderError("A message's 'content' must be a string or a list of text parts.",
                          f"{where}.content")
    out = []
    for j, part in enumerate(content):
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, dict) and part.get("type") in ("input_text", "output_text", "text") \
                and isinstance(part.get("text"), str):
            out.append(part["text"])
        else:
            raise GraderError("Only text content is supported in score_model input (images and audio are "
                              "not: the served models are text-only).", f"{where}.content.{j}")
    return out


def _multi(grader: dict, param: str) -> None:
    graders = _field(grader, "graders", param, dict)
    if "type" in graders:  # the SDK's type allows one grader here; it is named by its own name
        graders = {graders.get("name"): graders}
    if not graders:
        raise GraderError("'graders' needs at least one named grader.", f"{param}.graders")
    for name, sub in graders.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise GraderError(f"The grader name {name!r} must be an identifier (letters, digits, _) so "
                              "calculate_output can use it.", f"{param}.graders")
        validate(sub, f"{param}.graders.{name}", nested=True)
    formula.parse(_field(grader, "calculate_output", param), set(graders))


def sub_graders(grader: dict) -> dict[str, dict]:
    graders = grader["graders"]
    return {graders["name"]: graders} if "type" in graders else graders
