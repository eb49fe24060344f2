"""Any JSON value in any field gets a finding with its line number; the validator and prepare never raise."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuneforge.data.io import DataFileError
from tuneforge.data.prepare import PrepareAborted, PrepareOptions, prepare_file
from tuneforge.data.validate import validate_file

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
    max_leaves=10,
)
# Rows that put an arbitrary value where a chat/legacy/preference field belongs.
hostile_rows = st.one_of(
    json_values,
    st.builds(lambda v: {"messages": v}, json_values),
    st.builds(lambda v: {"messages": [v]}, json_values),
    st.builds(lambda k, v: {"messages": [{"role": "user", "content": "q"},
                                         {"role": "assistant", "content": "a", k: v}]},
              st.sampled_from(["role", "content", "weight", "tool_calls", "name"]), json_values),
    st.builds(lambda p, c: {"prompt": p, "completion": c}, json_values, json_values),
    st.builds(lambda i, a, b: {"input": i, "preferred_output": a, "non_preferred_output": b},
              json_values, json_values, json_values),
)


def _bad_lines(report) -> set[int]:
    return {f.line for f in report.findings if f.severity == "error" and f.line is not None}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=hostile_rows)
def test_any_json_row_never_raises_and_names_its_line(tmp_path, row):
    path = tmp_path / "train.jsonl"
    lines = [json.dumps(GOOD), "", json.dumps(row)]  # the hostile row is on line 3, after a blank line
    path.write_text("\n".join(lines) + "\n", "utf-8")
    report = validate_file(path, min_examples=1)
    # Every error is located: the line in the file (3, not the example index 2), or file-level.
    assert _bad_lines(report) <= {1, 3}
    assert all(f.line is not None or f.code in ("too_few_examples", "empty_file")
               for f in report.errors)
    if not isinstance(row, dict) or ("messages" in row and not isinstance(row["messages"], list)):
        assert 3 in _bad_lines(report) and "Line 3 (example 2)" in report.openai_error()[1]
    try:
        prepare_file(path, PrepareOptions(quiet=True, min_examples=1), out=lambda _s: None)
    except (DataFileError, PrepareAborted):
        pass  # a refusal the CLI prints, not a crash


def test_crashers_from_the_tracker_each_get_a_line_and_field(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [
        '{"messages": 5}',
        '{"messages": [5]}',
        '{"messages": [{"role": 5, "content": "x"}, {"role": "assistant", "content": "y"}]}',
        '{"prompt": 5, "completion": [1]}',
        '{"messages": ' + "[" * 60000 + "]" * 60000 + "}",
        '{"messages": [{"role": "assistant", "content": "x", "weight": ' + "9" * 5000 + "}]}",
    ]
    path.write_text("\n".join(rows) + "\n", "utf-8")
    report = validate_file(path)
    by_line = {}
    for f in report.findings:
        by_line.setdefault(f.line, []).append(f)
    assert by_line[1][0].field == "messages" and "number" in by_line[1][0].message
    assert by_line[2][0].field == "messages[0]"
    assert by_line[3][0].field == "messages[0].role"
    assert {f.field for f in by_line[4]} >= {"prompt", "completion"}
    assert "nested too deeply" in by_line[5][0].message
    assert "too many digits" in by_line[6][0].message
    code, message = report.openai_error()
    assert "line 1" in message.lower() and str(tmp_path) not in message


def test_job_error_names_the_file_line_after_blank_lines(tmp_path):
    good = json.dumps(GOOD)
    # Lines 1-6: 4 examples and 2 blank lines; line 7 is broken JSON (example 5).
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join([good, "", good, good, "", good, '{"messages": [', good]) + "\n", "utf-8")
    code, message = validate_file(path, min_examples=1).openai_error()
    assert code == "invalid_training_file"
    assert "Invalid file format. Line 7 (example 5): not valid JSON" in message
    assert str(tmp_path) not in message


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=hostile_rows)
def test_any_json_row_with_token_counting_never_raises(tmp_path, tokenizer, row):
    # The validate endpoint counts tokens with the model's template: that path must not raise either.
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + json.dumps(row) + "\n", "utf-8")
    report = validate_file(path, tokenizer=tokenizer, min_examples=1)
    assert _bad_lines(report) <= {1, 3}
