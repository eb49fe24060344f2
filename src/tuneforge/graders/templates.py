"""Grader templates: `{{item.a.b}}` (the dataset row, nested paths), `{{sample.output_text}}` (the model's
answer) and `{{sample.output_json.x}}` (the answer parsed as JSON). Anything else between `{{ }}` is an
error, as is a path the item or the sample does not have."""

from __future__ import annotations

import json
import re
from typing import Any

from tuneforge.graders.errors import GraderError

_TAG = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_MISSING = object()


class Sample:
    """The model sample a grader scores: its text and, when the text is JSON, the parsed value."""

    def __init__(self, output_text: str):
        self.output_text = output_text
        try:
            self.output_json: Any = json.loads(output_text)
        except (ValueError, TypeError):
            self.output_json = _MISSING


def _walk(value: Any, path: list[str]) -> Any:
    for key in path:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return _MISSING
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _lookup(expr: str, sample: Sample, item: Any, param: str) -> str:
    root, *path = expr.split(".")
    if root == "item":
        value = _walk(item, path)
        where = "the item"
    elif root == "sample" and path == ["output_text"]:
        return sample.output_text
    elif root == "sample" and path[:1] == ["output_json"]:
        if sample.output_json is _MISSING:
            raise GraderError(f"The template '{{{{{expr}}}}}' needs the model sample to be JSON, and it is "
                              "not; send a JSON model_sample or use {{sample.output_text}}.", "model_sample")
        value, where = _walk(sample.output_json, path[1:]), "the model sample's JSON"
    else:
        raise GraderError(f"Unknown template '{{{{{expr}}}}}' in {param}; use {{{{item.<field>}}}}, "
                          "{{sample.output_text}} or {{sample.output_json.<field>}}.", param)
    if value is _MISSING:
        raise GraderError(f"The template '{{{{{expr}}}}}' in {param} names a field that {where} does not "
                          "have; add it there or fix the path.", param if root == "sample" else "item")
    return _text(value)


def render(template: str, sample: Sample, item: Any, param: str) -> str:
    """`template` with every `{{...}}` replaced; `param` names the field in errors."""
    return _TAG.sub(lambda m: _lookup(m.group(1), sample, item, param), template)


def check(template: str, param: str) -> None:
    """Validation without data: every tag has a known root."""
    for m in _TAG.finditer(template):
        expr = m.group(1)
        root, *path = expr.split(".")
        ok = (root == "item" and all(path)) or (root == "sample" and (
            path == ["output_text"] or (path[:1] == ["output_json"] and all(path))))
        if not ok:
            raise GraderError(f"Unknown template '{{{{{expr}}}}}' in {param}; use {{{{item.<field>}}}}, "
                              "{{sample.output_text}} or {{sample.output_json.<field>}}.", param)
