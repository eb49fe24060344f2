"""`tuneforge eval --grader`: OpenAI graders as metric columns, against the live tiny-model server: the means
are predictable (a rouge_l text_similarity grader must agree with eval's own ROUGE-L; string_checks on
`{{item.reference}}` / `{{item.prompt}}` hit known rows), a row a grader cannot score counts 0 and is
reported, and a bad grader file fails before any server is asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from evalkit import FT_ID
from rich.console import Console
from testkit import free_port

from tuneforge.evaluation.errors import EvalInputError
from tuneforge.evaluation.grading import load_graders
from tuneforge.evaluation.report import print_result
from tuneforge.evaluation.run import Target, evaluate

TUNEFORGE = str(Path(sys.executable).with_name("tuneforge"))


def _run(*args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return subprocess.run([TUNEFORGE, "eval", *args], capture_output=True, text=True, timeout=600,
                          env={**clean, "COLUMNS": "250"})


# No "name": the metric is named by the file's stem ("rouge").
ROUGE = {"type": "text_similarity", "input": "{{sample.output_text}}", "reference": "{{item.reference}}",
         "evaluation_metric": "rouge_l"}
CHECKS = [
    {"type": "string_check", "name": "warranty_row", "input": "{{item.reference}}",
     "reference": "Two years on the frame.", "operation": "eq"},
    # No "name" in a list: "<stem>_<position>". item.prompt of a chat row is its last user message.
    {"type": "string_check", "input": "{{item.prompt}}", "reference": "保修期多长？", "operation": "eq"},
    # Only the legacy row has a `completion`: the three chat rows cannot be scored.
    {"type": "string_check", "name": "lisbon", "input": "{{item.completion}}", "reference": " Lisbon",
     "operation": "eq"},
]


def _write(folder: Path, name: str, data) -> Path:
    path = folder / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_graders_are_metrics_in_json_and_report(open_server, tiny_model, heldout, tmp_path):
    report = tmp_path / "report.html"
    proc = _run("-m", FT_ID, "-c", tiny_model, "-f", str(heldout), "--json", "-o", str(report),
                "--max-new-tokens", "8", "--base-url", open_server.base_url,
                "--grader", str(_write(tmp_path, "rouge.json", ROUGE)),
                "-g", str(_write(tmp_path, "checks.json", CHECKS)))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["graders"] == ["rouge", "warranty_row", "checks_2", "lisbon"]
    for m in data["models"]:
        g = m["graders"]
        assert g["rouge"]["mean"] == pytest.approx(m["rouge_l"])  # the same metric, the same code
        assert g["rouge"]["rewards"] == pytest.approx([p["rouge_l"] for p in m["per_example"]])
        assert (g["warranty_row"]["mean"], g["warranty_row"]["rewards"]) == (0.25, [1.0, 0.0, 0.0, 0.0])
        assert g["checks_2"]["rewards"] == [0.0, 1.0, 0.0, 0.0] and g["checks_2"]["errors"] == 0
        lisbon = g["lisbon"]
        assert (lisbon["mean"], lisbon["errors"], lisbon["rewards"]) == (0.25, 3, [0.0, 0.0, 0.0, 1.0])
        assert lisbon["row_errors"][3] is None
        first = lisbon["row_errors"][0]
        assert "'{{item.completion}}'" in first and "does not have" in first
    html = report.read_text(encoding="utf-8")
    assert "<td>warranty_row ↑</td>" in html and "<td>checks_2 ↑</td>" in html
    assert "0.250 (3 errors)" in html and "grader lisbon: 3 errors in 4 rows, each scored 0" in html
    assert "warranty_row 1.000" in html and "(error: The template" in html  # per-example rewards


def test_score_model_asks_the_eval_server_and_errors_count(open_server, tiny_model, heldout, tmp_path):
    prompt = [{"role": "user", "content": "Reference: {{item.reference}}\nAnswer: {{sample.output_text}}\n"
                                          "Score 0 to 1:"}]
    judge = {"type": "score_model", "name": "judge", "model": tiny_model, "input": prompt,
             "sampling_params": {"max_completions_tokens": 3}}
    wrong = {**judge, "name": "wrong_judge", "model": "ft:tiny-llama:personal::zzzzzzzz"}
    graders = load_graders([_write(tmp_path, "judges.json", [judge, wrong])])
    result = evaluate([Target(tiny_model, open_server.base_url)], heldout, limit=2, max_new_tokens=4,
                      graders=graders)
    [scores] = result.models
    good, bad = scores.graders["judge"], scores.graders["wrong_judge"]
    # The tiny random model may or may not reply with a number; the request itself must succeed.
    assert set(good.row_errors) <= {None, "the judge model's reply held no number"}
    assert 0 <= good.mean <= 1 and len(good.rewards) == 2
    assert (bad.mean, bad.errors) == (0.0, 2) and "HTTP 404" in bad.first_error
    console = Console(record=True, width=250)
    print_result(result, console, examples=0)
    text = console.export_text()
    assert "judge ↑" in text and "0.000 (2 errors)" in text
    assert f"{tiny_model}: grader wrong_judge: 2 errors in 2 rows, each scored 0; first: " in text


def test_a_bad_grader_fails_fast_naming_file_and_field(heldout, tmp_path):
    bad = _write(tmp_path, "bad.json", {**CHECKS[0], "operation": "equals"})
    down = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: asking a server would fail differently
    proc = _run("-m", FT_ID, "-f", str(heldout), "--grader", str(bad), "--base-url", down)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"error: {bad}: grader.operation: 'operation' must be one of eq, ne, " \
                                  "like, ilike; got 'equals'."

    listed = _write(tmp_path, "listed.json", [ROUGE, {**ROUGE, "evaluation_metric": "cosine"}])
    with pytest.raises(EvalInputError, match=r"listed\.json: grader\[1\]\.evaluation_metric: .*cosine"):
        load_graders([listed])
    with pytest.raises(EvalInputError, match=r"two graders are named 'rouge'"):
        load_graders([_write(tmp_path, "rouge.json", ROUGE), _write(tmp_path, "other.json",
                                                                     {**ROUGE, "name": "rouge"})])
    (tmp_path / "broken.json").write_text("{oops")
    with pytest.raises(EvalInputError, match=r"broken\.json: not valid JSON"):
        load_graders([tmp_path / "broken.json"])
