"""Bad input never crashes: precise findings from the validator, one-line errors from the CLI."""

from __future__ import annotations

import json
import sys
import tracemalloc

import pytest

from tuneforge.data.io import read_examples
from tuneforge.data.validate import validate_file


def row(i: int, text: str = "answer") -> str:
    return json.dumps(
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"{text} {i}"}]}
    )


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """`tuneforge ARGS` in-process through the real entry point (the one that catches user errors)."""
    from tuneforge.cli.main import main

    monkeypatch.setattr(sys, "argv", ["tuneforge", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_openai_error_names_example_and_message(tmp_path):
    lines = [row(i) for i in range(120)]
    lines[99] = json.dumps({"messages": [{"role": "user", "content": "q"}, {"content": "no role"}]})
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code, message = validate_file(path).openai_error()
    assert code == "invalid_training_file"
    assert message.startswith(
        "The job failed due to an invalid training file. Invalid file format. "
        "Line 100 (example 100), message 2"
    )
    assert "Discriminator 'role' is missing" in message
    code, message = validate_file(path).openai_error(param="validation_file")
    assert code == "invalid_validation_file" and "invalid validation file" in message


def test_openai_error_too_few_examples(tmp_path):
    path = tmp_path / "three.jsonl"
    path.write_text("\n".join(row(i) for i in range(3)) + "\n")
    assert validate_file(path).openai_error() == (
        "invalid_n_examples",
        "Training file has 3 example(s), but must have at least 10 examples",
    )


def test_openai_error_unexpected_format(tmp_path):
    path = tmp_path / "weird.jsonl"
    path.write_text("\n".join(json.dumps({"text": f"t{i}"}) for i in range(12)) + "\n")
    code, message = validate_file(path).openai_error()
    assert code == "invalid_training_file"
    assert "Unexpected file format, expected either prompt/completion pairs or chat messages." in message


def test_bom_and_crlf_are_accepted_and_read(tmp_path):
    path = tmp_path / "win.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(row(i, "答案") for i in range(12)).encode() + b"\r\n")
    report = validate_file(path)
    assert report.ok and report.n_examples == 12
    assert {"utf8_bom", "crlf_line_endings"} <= set(report.counts)
    rows = read_examples(path)
    assert rows[0]["messages"][1]["content"] == "答案 0"


def test_ten_megabyte_line_is_one_finding_with_bounded_memory(tmp_path):
    path = tmp_path / "huge_line.jsonl"
    huge = json.dumps(
        {"messages": [{"role": "user", "content": "x" * 10_000_000}, {"role": "assistant", "content": "y"}]}
    )
    path.write_text("\n".join([row(0), huge] + [row(i) for i in range(1, 12)]) + "\n")
    tracemalloc.start()
    report = validate_file(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert [(f.line, f.code) for f in report.errors] == [(2, "line_too_long")]
    assert "10,000,0" in report.errors[0].message  # the size in bytes is named
    assert peak < 0.9 * len(huge)  # never holds the whole 10 MB line


def test_large_file_is_streamed(tmp_path):
    path = tmp_path / "big.jsonl"
    answer = "a fairly ordinary support answer, long enough to look like real data. " * 8
    with path.open("w") as fh:
        for i in range(12_000):
            fh.write(row(i, answer) + "\n")
    size = path.stat().st_size
    tracemalloc.start()
    report = validate_file(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert report.ok and report.n_examples == 12_000
    # One line at a time plus a few bytes of bookkeeping per example: a fraction of the file.
    assert size > 6_000_000 and peak < size / 3


def test_many_bad_lines_keep_bounded_findings(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text("{nope\n" * 5000)
    report = validate_file(path)
    assert report.counts["invalid_json"] == 5000
    assert len(report.findings) <= 201 and report.suppressed["invalid_json"] == 4800
    assert report.to_json()["n_errors"] == 5000


@pytest.mark.parametrize(
    "name,content,expect",
    [
        ("binary.jsonl", b"\x00\x01\x02\x03" * 100, "NUL bytes"),
        ("empty.jsonl", b"", "no examples"),
        ("sheet.jsonl", b"PK\x03\x04" + b"\x00" * 100, "zip archive"),
        ("array.jsonl", json.dumps([{"prompt": "a", "completion": "b"}] * 12).encode(), "JSON array"),
    ],
)
def test_cli_check_gives_precise_error_without_traceback(
    name, content, expect, tmp_path, monkeypatch, capsys
):
    path = tmp_path / name
    path.write_bytes(content)
    code, output = run_cli(monkeypatch, capsys, "prepare", "-f", str(path), "--check", "--no-tokens")
    assert code == 1
    assert expect in output and "Traceback" not in output


@pytest.mark.parametrize(
    "name,content,expect",
    [
        ("binary.jsonl", b"\x00\x01\x02\x03" * 100, "NUL bytes"),
        ("empty.jsonl", b"", "no examples"),
        ("data.parquet", b"PAR1", "unsupported file type"),
        ("broken.csv", b"prompt,completion\n\xff\xfe,x\n", "not UTF-8"),
    ],
)
def test_cli_prepare_gives_precise_error_without_traceback(
    name, content, expect, tmp_path, monkeypatch, capsys
):
    path = tmp_path / name
    path.write_bytes(content)
    code, output = run_cli(monkeypatch, capsys, "prepare", "-f", str(path), "-q", "--no-tokens")
    assert code == 1
    assert expect in output and "Traceback" not in output


def test_cli_check_json_output(tmp_path, monkeypatch, capsys):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join([row(i) for i in range(11)] + ["{bad"]) + "\n")
    code, output = run_cli(
        monkeypatch, capsys, "prepare", "-f", str(path), "--check", "--json", "--no-tokens"
    )
    assert code == 1
    report = json.loads(output)
    assert report["ok"] is False and report["format"] == "chat" and report["n_examples"] == 12
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert [(f["line"], f["code"]) for f in errors] == [(12, "invalid_json")]
