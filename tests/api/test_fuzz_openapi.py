"""Fuzz the published OpenAPI schema with schemathesis against a real server.

Every operation the app publishes (files, jobs, models, chat, ... whatever routers exist when the test
runs) gets schema-valid and schema-violating requests. The server must never answer 5xx, and every
error must be OpenAI's `{"error": {"message", "type", "param", "code"}}`. The example budget is split
across operations so the whole run stays around a minute as routes are added.
"""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hyp_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

TOTAL_EXAMPLES = 500  # across all operations and both generation modes
PER_OPERATION = (5, 40)  # floor and ceiling per operation and mode
REQUEST_TIMEOUT = 20


def error_shape_problem(status: int, body: bytes) -> str | None:
    """Why an error response is not OpenAI-shaped, or None if it is."""
    try:
        payload = json.loads(body)
    except ValueError:
        return f"{status} body is not JSON: {body[:200]!r}"
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict) or set(error) != {"message", "type", "param", "code"}:
        return f"{status} body is not {{'error': {{message, type, param, code}}}}: {body[:300]!r}"
    if not isinstance(error["message"], str) or not error["message"] or not isinstance(error["type"], str):
        return f"{status} error needs a non-empty message and a type: {body[:300]!r}"
    if not all(error[k] is None or isinstance(error[k], str) for k in ("param", "code")):
        return f"{status} error param/code must be strings or null: {body[:300]!r}"
    if "Traceback" in error["message"]:
        return f"{status} error leaks a traceback: {body[:300]!r}"
    return None


def test_error_shape_check_can_fail():
    assert error_shape_problem(404, b'{"detail": "Not Found"}')
    assert error_shape_problem(500, b"Internal Server Error")
    good = b'{"error": {"message": "x", "type": "t", "param": null, "code": null}}'
    assert error_shape_problem(400, good) is None


def fuzz_operation(op, mode: GenerationMode, examples: int, base_url: str) -> str | None:
    """Send up to `examples` generated requests to one operation; the first problem found, or None."""
    found: list[str] = []

    @hyp_settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=mode))
    def run(case):
        if found:
            return
        response = case.call(base_url=base_url, timeout=REQUEST_TIMEOUT)
        problem = None
        if response.status_code >= 500:
            problem = f"server error {response.status_code}: {response.content[:300]!r}"
        elif response.status_code >= 400:
            problem = error_shape_problem(response.status_code, response.content)
        if problem:
            found.append(f"{problem}\n    reproduce: {case.as_curl_command()}")

    try:
        run()
    except Unsatisfiable:  # e.g. no schema-violating request exists for an operation without inputs
        pass
    return found[0] if found else None


@pytest.mark.timeout(300)
def test_openapi_schema_fuzz(server):
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert any(op.path == "/v1/files" for op in operations)
    per_mode = max(PER_OPERATION[0], min(PER_OPERATION[1], TOTAL_EXAMPLES // (2 * len(operations))))
    failures: dict[str, str] = {}
    started = time.monotonic()
    timings: dict[str, float] = {}
    for op in operations:
        label, op_started = f"{op.method.upper()} {op.path}", time.monotonic()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            problem = fuzz_operation(op, mode, per_mode, server.url)
            if problem:
                failures[f"{label} ({mode.value})"] = problem
                break
        timings[label] = time.monotonic() - op_started
    report = "\n".join(f"{label}: {text}" for label, text in failures.items())
    assert not failures, f"{len(failures)} operation(s) misbehaved under fuzzing:\n{report}"
    slowest = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(timings.items(), key=lambda kv: -kv[1])[:3])
    print(f"fuzzed {len(operations)} operations x {per_mode} examples x 2 modes "
          f"in {time.monotonic() - started:.1f} s (slowest: {slowest})")


def test_nul_bytes_in_ids_and_cursors_never_500_on_postgres(postgres_url, make_settings, start_server):
    """PostgreSQL rejects NUL bytes in text parameters where SQLite stores them: every operation must
    answer such an id, `after` cursor or JSON field with a 4xx, never a 500."""
    from pg import _fresh_postgres_db

    server = start_server(make_settings(database_url=_fresh_postgres_db(postgres_url)))
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    problems = []
    for path, ops in paths.items():
        url = server.url + re.sub(r"\{[^}]+\}", "x%00y", path)
        for method, op in ops.items():
            if method not in ("get", "post", "delete"):
                continue
            query = {p["name"]: "x\x00y" for p in op.get("parameters", []) if p["in"] == "query"
                     and p["name"] in ("after", "model", "purpose")}
            body = {"model": "davinci\x00", "training_file": "file-\x00", "suffix": "a\x00",
                    "messages": [{"role": "user", "content": "x\x00"}]} if method == "post" else None
            r = httpx.request(method.upper(), url, params=query, json=body, timeout=REQUEST_TIMEOUT)
            problem = (f"server error {r.status_code}: {r.content[:200]!r}" if r.status_code >= 500
                       else error_shape_problem(r.status_code, r.content) if r.status_code >= 400 else None)
            if problem:
                problems.append(f"{method.upper()} {path}: {problem}")
    assert problems == [], "\n".join(problems)
