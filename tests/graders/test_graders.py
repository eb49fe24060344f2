"""The graders library (docs/graders.md): scoring tables, templates, formulas and what is refused."""

from __future__ import annotations

import pytest

from tuneforge.graders import GraderError, run_grader, validate


def check(op, input="{{sample.output_text}}", reference="{{item.answer}}"):
    return {"type": "string_check", "name": "c", "input": input, "reference": reference, "operation": op}


def similar(metric, reference="the cat sat on the mat"):
    return {"type": "text_similarity", "name": "s", "input": "{{sample.output_text}}", "reference": reference,
            "evaluation_metric": metric}


@pytest.mark.parametrize(("op", "sample", "answer", "reward"), [
    ("eq", "Paris", "Paris", 1.0), ("eq", "paris", "Paris", 0.0), ("ne", "Rome", "Paris", 1.0),
    ("ne", "Paris", "Paris", 0.0), ("like", "It is Paris.", "Paris", 1.0),
    ("like", "it is paris", "Paris", 0.0),
    ("ilike", "IT IS PARIS", "paris", 1.0), ("ilike", "Rome", "paris", 0.0),
])
def test_string_check(op, sample, answer, reward):
    assert run_grader(check(op), sample, {"answer": answer})["reward"] == reward


@pytest.mark.parametrize(("metric", "sample", "low", "high"), [
    ("fuzzy_match", "the cat sat on a mat", 0.85, 0.95), ("bleu", "the cat sat on a mat", 0.5, 0.58),
    ("gleu", "the cat sat on a mat", 0.6, 0.62), ("meteor", "the cat sat on a mat", 0.78, 0.83),
    ("rouge_1", "the cat sat on a mat", 0.83, 0.84), ("rouge_2", "the cat sat on a mat", 0.59, 0.61),
    ("rouge_5", "the cat sat on a mat", 0.0, 0.0), ("rouge_l", "the cat sat on a mat", 0.83, 0.84),
    ("bleu", "dogs bark loudly", 0.0, 0.05), ("meteor", "mat the on sat cat the", 0.3, 0.6),
])
def test_text_similarity_ranges(metric, sample, low, high):
    assert low <= run_grader(similar(metric), sample)["reward"] <= high


@pytest.mark.parametrize("metric", ["fuzzy_match", "bleu", "gleu", "meteor", "rouge_1", "rouge_3", "rouge_l"])
def test_identical_text_scores_one(metric):
    reward = run_grader(similar(metric), "The cat sat on the mat")["reward"]
    assert reward == pytest.approx(1.0, abs=0.003)  # METEOR's fragmentation penalty: 0.998


def test_cjk_is_scored_per_character():
    out = run_grader(similar("rouge_1", reference="猫坐在垫子上"), "猫在垫子上")
    assert out["reward"] == pytest.approx(2 * 5 / 11)  # 5 of 5 characters match, 5 of 6 recalled


def test_templates_nested_item_and_output_json():
    g = check("eq", input="{{sample.output_json.city}}", reference="{{ item.place.0.name }}")
    assert run_grader(g, '{"city": "Oslo"}', {"place": [{"name": "Oslo"}]})["reward"] == 1.0
    with pytest.raises(GraderError) as err:
        run_grader(g, "not json", {"place": [{"name": "Oslo"}]})
    assert err.value.param == "model_sample"
    with pytest.raises(GraderError) as err:
        run_grader(check("eq"), "x", {"other": 1})
    assert "does not have" in err.value.message and err.value.param == "item"


def test_multi_formula_and_sub_rewards():
    g = {"type": "multi", "name": "m", "calculate_output": "0.25 * a + max(b, 0.5) ** 2 - -1",
         "graders": {"a": check("eq", reference="yes"), "b": check("ne", reference="yes")}}
    out = run_grader(g, "yes")
    assert out["sub_rewards"] == {"a": 1.0, "b": 0.0}
    assert out["reward"] == pytest.approx(0.25 + 0.25 + 1)
    assert out["metadata"]["type"] == "multi" and out["metadata"]["scores"] == {"a": 1.0, "b": 0.0}


@pytest.mark.parametrize(("formula", "words"), [
    ("__import__('os').system('x')", "not allowed"), ("a.real", "not allowed"),
    ("a if a else 1", "not allowed"),
    ("c + 1", "not one of the graders"), ("a % 2", "Mod"), ("'1'", "not a number"), ("a +", "not a valid"),
    ("a[0]", "not allowed"), ("min(a, key=b)", "not allowed"), ("(lambda: 1)()", "not allowed"),
])
def test_bad_formulas_refused(formula, words):
    g = {"type": "multi", "name": "m", "calculate_output": formula,
         "graders": {"a": check("eq"), "b": check("eq")}}
    with pytest.raises(GraderError) as err:
        validate(g)
    assert words in err.value.message and err.value.param == "grader.calculate_output"


def test_formula_runtime_errors_are_grader_errors():
    g = {"type": "multi", "name": "m", "calculate_output": "1 / a",
         "graders": {"a": check("eq", reference="x")}}
    with pytest.raises(GraderError, match="divides by zero"):
        run_grader(g, "y")
    g["calculate_output"] = "a ** 1000"
    with pytest.raises(GraderError):
        run_grader(g, "x")


@pytest.mark.parametrize(("grader", "param", "words"), [
    ({"type": "python", "name": "p", "source": "def grade(s, i): return 1"}, "grader.type",
     "does not run user code"),
    ({"type": "label_model", "name": "l"}, "grader.type", "not supported"),
    (similar("cosine"), "grader.evaluation_metric", "embedding"),
    (similar("wer"), "grader.evaluation_metric", "must be one of"),
    ({"type": "nope", "name": "x"}, "grader.type", "must be one of"),
    ({"type": "string_check", "input": "a", "reference": "b", "operation": "eq"}, "grader.name", "required"),
    ({"type": "multi", "name": "m", "calculate_output": "b",
      "graders": {"b": check("regex")}}, "grader.graders.b.operation", "must be one of"),
    ({"type": "multi", "name": "m", "calculate_output": "b",
      "graders": {"b": {"type": "python", "name": "b", "source": ""}}}, "grader.graders.b.type", "user code"),
    (check("eq", input="{{sample.other}}"), "grader.input", "Unknown template"),
    ({"type": "score_model", "name": "s", "model": "m", "input": [{"role": "user", "content": "x"}],
      "range": [1, 0]}, "grader.range", "low < high"),
])
def test_validate_refusals(grader, param, words):
    with pytest.raises(GraderError) as err:
        validate(grader)
    assert err.value.param == param and words in err.value.message and err.value.status == 400


def score_grader(**extra):
    return {"type": "score_model", "name": "judge", "model": "tiny",
            "input": [{"role": "system", "content": "Grade 0-10."},
                      {"role": "user",
                       "content": [{"type": "input_text", "text": "Answer: {{sample.output_text}}"}]}],
            **extra}


def test_score_model_parses_first_number_and_clamps():
    seen = []

    def ask(model, messages, params):
        seen.append((model, messages, params))
        return "Score: 7.5 out of 10"

    out = run_grader(score_grader(range=[0, 10], sampling_params={"temperature": 0}), "42", ask=ask)
    assert out["reward"] == 7.5
    assert seen == [("tiny", [{"role": "system", "content": "Grade 0-10."},
                              {"role": "user", "content": "Answer: 42"}], {"temperature": 0})]
    assert run_grader(score_grader(), "42", ask=lambda *a: "9")["reward"] == 1.0  # default range [0, 1]


def test_score_model_without_a_number_scores_zero_with_an_error_flag():
    out = run_grader(score_grader(), "42", ask=lambda *a: "I cannot say.")
    assert out["reward"] == 0.0 and out["metadata"]["errors"]["model_grader_parse_error"] is True
