"""/v1/fine_tuning/alpha/graders/run and /validate through the real openai SDK (docs/graders.md)."""

from __future__ import annotations

import dataclasses

import openai
import pytest
from testkit import UvicornThread


@pytest.fixture(scope="module")
def client(settings, tiny_model, tmp_path_factory):
    from openai import OpenAI

    from tuneforge.api.app import create_app

    db_dir = tmp_path_factory.mktemp("graders-db")
    app = create_app(dataclasses.replace(settings, database_url=f"sqlite:///{db_dir / 'db.sqlite'}"),
                     start_worker=False)
    server = UvicornThread(app)
    yield OpenAI(base_url=server.url + "/v1", api_key="sk-anything", max_retries=0, timeout=120)
    server.stop()


def sample_check(op="eq"):
    return {"type": "string_check", "name": "exact", "input": "{{sample.output_text}}",
            "reference": "{{item.answer}}", "operation": op}


def test_string_check_run(client):
    out = client.fine_tuning.alpha.graders.run(grader=sample_check(), model_sample="Paris",
                                               item={"answer": "Paris"})
    assert out.reward == 1.0
    assert out.metadata.name == "exact" and out.metadata.type == "string_check"
    assert out.metadata.errors.formula_parse_error is False and out.metadata.execution_time >= 0
    miss = client.fine_tuning.alpha.graders.run(grader=sample_check(), model_sample="Rome",
                                                item={"answer": "Paris"})
    assert miss.reward == 0.0


def test_text_similarity_run(client):
    grader = {"type": "text_similarity", "name": "sim", "input": "{{sample.output_text}}",
              "reference": "the cat sat on the mat", "evaluation_metric": "rouge_1"}
    out = client.fine_tuning.alpha.graders.run(grader=grader, model_sample="the cat sat on a mat")
    assert out.reward == pytest.approx(5 / 6)


def test_multi_run_with_sub_rewards(client):
    grader = {"type": "multi", "name": "both", "calculate_output": "0.5 * exact + 0.5 * like",
              "graders": {"exact": sample_check("eq"), "like": sample_check("ilike")}}
    out = client.fine_tuning.alpha.graders.run(grader=grader, model_sample="It is PARIS",
                                               item={"answer": "paris"})
    assert out.reward == 0.5 and out.sub_rewards == {"exact": 0.0, "like": 1.0}


@pytest.mark.parametrize(("grader", "param", "words"), [
    ({"type": "python", "name": "p", "source": "def grade(sample, item):\n    return 1.0"}, "grader.type",
     "does not run user code"),
    ({"type": "multi", "name": "m", "calculate_output": "__import__('os').getcwd()",
      "graders": {"a": sample_check()}}, "grader.calculate_output", "not allowed"),
    ({"type": "multi", "name": "m", "calculate_output": "a",
      "graders": {"a": {**sample_check(), "operation": "regex"}}}, "grader.graders.a.operation",
     "must be one of"),
])
def test_refused_graders_are_400(client, grader, param, words):
    for call in (lambda: client.fine_tuning.alpha.graders.run(grader=grader, model_sample="x"),
                 lambda: client.fine_tuning.alpha.graders.validate(grader=grader)):
        with pytest.raises(openai.BadRequestError) as err:
            call()
        assert err.value.status_code == 400
        assert err.value.body["param"] == param and words in err.value.body["message"]


def test_validate_echoes_the_grader(client):
    out = client.fine_tuning.alpha.graders.validate(grader=sample_check("like"))
    assert out.grader.type == "string_check" and out.grader.operation == "like"


def test_score_model_asks_the_served_model(client, tiny_model):
    grader = {"type": "score_model", "name": "judge", "model": tiny_model, "range": [0, 10],
              "input": [{"role": "user", "content": "Score this answer 0-10: {{sample.output_text}}"}],
              "sampling_params": {"temperature": 0, "max_completions_tokens": 4}}
    out = client.fine_tuning.alpha.graders.run(grader=grader, model_sample="42")
    # The tiny model is random: its reply either holds a number (clamped into range) or is flagged.
    assert 0.0 <= out.reward <= 10.0 and out.metadata.type == "score_model"
    usage = out.api_model_grader_token_usage_per_model[tiny_model]
    assert usage["completion_tokens"] >= 1
    assert usage["total_tokens"] == out.metadata.token_usage > usage["prompt_tokens"] > 0
    if out.metadata.errors.api_model_grader_parse_error:
        assert out.reward == 0.0
    with pytest.raises(openai.NotFoundError) as err:
        client.fine_tuning.alpha.graders.run(grader={**grader, "model": "ft:nobody:x"}, model_sample="42")
    assert err.value.body["code"] == "model_not_found"
