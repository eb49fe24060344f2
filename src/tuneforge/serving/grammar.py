"""Check and compile a `response_format` JSON schema before a request reaches the engine.

lm-format-enforcer builds a regex automaton lazily, on the decode thread, the first time a row reaches a
`pattern`: a pattern such as `[a-z]{1,20000}` takes minutes there and stalls every other request. So a
schema is refused up front when it is too big or its patterns repeat too much, and its patterns are
compiled here (in a worker thread, with a time limit) so a slow one is a 400 instead of a stall.
"""

from __future__ import annotations

import asyncio
import json
import re

from tuneforge.serving.params import ServingError

MAX_SCHEMA_CHARS = 64_000
MAX_DEPTH = 32
MAX_REPEAT = 1_000  # total of the upper bounds of a pattern's repetitions
COMPILE_SECONDS = 5.0
PARAM = "response_format"

try:  # Python 3.11+: the regex parser re.compile uses
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]


def _bad(message: str) -> ServingError:
    return ServingError(f"Invalid 'response_format': {message}", status=400, param=PARAM)


def _repeat_weight(parsed) -> int:
    weight = 0
    for op, arg in parsed:
        if op in (sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT):
            low, high, sub = arg
            high = low if high == sre_parse.MAXREPEAT else high
            weight += max(high, 1) * max(1, _repeat_weight(sub))
        elif op == sre_parse.SUBPATTERN:
            weight += _repeat_weight(arg[-1])
        elif op == sre_parse.BRANCH:
            weight += sum(_repeat_weight(b) for b in arg[1])
    return weight


_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def _walk(node, root: dict, where: str, depth: int, patterns: list[str], is_map: bool = False) -> None:
    if depth > MAX_DEPTH:
        raise _bad(f"the schema nests deeper than {MAX_DEPTH} levels at '{where}'.")
    if isinstance(node, list):
        for i, item in enumerate(node):
            _walk(item, root, f"{where}[{i}]", depth + 1, patterns)
        return
    if not isinstance(node, dict):
        return
    if is_map:  # names -> subschemas: a property may be called "type" or "pattern"
        for key, value in node.items():
            _walk(value, root, f"{where}.{key}", depth + 1, patterns)
        return
    ref = node.get("$ref")
    if ref is not None:
        _resolve_ref(ref, root, where)
    if "type" in node:
        kinds = node["type"] if isinstance(node["type"], list) else [node["type"]]
        allowed = {"object", "array", "string", "number", "integer", "boolean", "null"}
        if not all(isinstance(k, str) and k in allowed for k in kinds):
            raise _bad(f"'{where}.type' is {node['type']!r}; use one of {', '.join(sorted(allowed))}.")
    pattern = node.get("pattern")
    if pattern is not None:
        _check_pattern(pattern, f"{where}.pattern")
        patterns.append(pattern)
    for key, value in node.items():
        if key not in ("enum", "const", "default", "examples"):
            _walk(value, root, f"{where}.{key}", depth + 1, patterns, key in _MAPS)


def _resolve_ref(ref, root: dict, where: str) -> None:
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise _bad(f"'{where}.$ref' is {ref!r}; only local references such as '#/$defs/Name' work.")
    node = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise _bad(f"'{where}.$ref' points to {ref!r}, which the schema does not define.")
        node = node[part]


def _check_pattern(pattern, where: str) -> None:
    if not isinstance(pattern, str):
        raise _bad(f"'{where}' must be a string (a regular expression).")
    try:
        weight = _repeat_weight(sre_parse.parse(pattern))
    except (re.error, RecursionError, OverflowError) as exc:
        raise _bad(f"'{where}' is not a valid regular expression: {exc}.") from None
    if weight > MAX_REPEAT:
        raise _bad(f"'{where}' allows repetitions up to {weight} characters; the limit is {MAX_REPEAT}. "
                   "Use smaller bounds such as {1,100}.")


def check_schema(schema) -> list[str]:
    """Refuse a schema that is not an object, too big, or wrong; return its regex patterns."""
    if not isinstance(schema, dict):
        raise _bad("'json_schema.schema' must be a JSON Schema object.")
    try:
        size = len(json.dumps(schema))
    except (TypeError, ValueError, RecursionError):
        raise _bad("the schema is not plain JSON.") from None
    if size > MAX_SCHEMA_CHARS:
        raise _bad(f"the schema has {size} characters; the limit is {MAX_SCHEMA_CHARS}.")
    patterns: list[str] = []
    _walk(schema, schema, "schema", 0, patterns)
    return patterns


def _compile(schema: dict, patterns: list[str]):
    import interegular
    from lmformatenforcer import JsonSchemaParser

    for pattern in patterns:  # the work the enforcer would otherwise do on the decode thread
        interegular.parse_pattern(pattern).to_fsm()
    return JsonSchemaParser(schema)


async def compile_schema(schema) -> object:
    """The enforcer's parser for `schema`, built off the event loop and the engine thread."""
    patterns = check_schema(schema)
    try:
        return await asyncio.wait_for(asyncio.to_thread(_compile, schema, patterns), COMPILE_SECONDS)
    except TimeoutError:
        raise _bad(f"the schema took over {COMPILE_SECONDS:.0f} s to compile; simplify its "
                   "patterns.") from None
    except ServingError:
        raise
    except Exception as exc:  # the enforcer's own complaints about a schema it cannot follow
        raise _bad(f"the schema cannot be followed: {exc}.") from None
