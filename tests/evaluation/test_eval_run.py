"""evaluate() over HTTP against live servers with the tiny model: what is served is what is scored."""

from __future__ import annotations

import math

import pytest
from evalkit import FT_ID

from tuneforge.evaluation.errors import EvalInputError, EvalServerError
from tuneforge.evaluation.http import Server
from tuneforge.evaluation.report import language_changes, render_html
from tuneforge.evaluation.run import Target, evaluate
from tuneforge.evaluation.scoring import Prompt, score_reference


def test_served_tuned_adapter_beats_its_base(open_server, tiny_model, heldout):
    url = open_server.base_url
    result = evaluate([Target(FT_ID, url), Target(tiny_model, url)], heldout, max_new_tokens=24)
    tuned, base = result.models
    for m in (tuned, base):
        assert m.unavailable is None and len(m.answers) == 4 and m.base_url == url
        assert all(math.isfinite(v) for v in (m.loss, m.perplexity, m.token_accuracy))
        assert 0 <= m.token_accuracy <= 1 and m.reference_tokens > 0
    assert tuned.loss < base.loss and tuned.perplexity < base.perplexity
    assert tuned.token_accuracy > base.token_accuracy
    assert tuned.rouge_l > base.rouge_l
    assert result.best().model == FT_ID
    assert result.references[1] == "车架保修两年。" and result.questions[3] == "Shop city ->"

    html = render_html(result)
    assert "车架保修两年。" in html and "<script" not in html
    # summary header, 5 metrics, exact match and ROUGE-L per language, answers header, 4 rows
    assert html.count("<tr>") == 1 + 5 + 2 * 2 + 1 + 4
    assert "ROUGE-L, English (3) ↑" in html and "ROUGE-L, Chinese (1) ↑" in html


def test_quality_is_also_scored_per_language(open_server, tiny_model, heldout):
    result = evaluate([Target(FT_ID, open_server.base_url)], heldout, max_new_tokens=24)
    assert result.languages == ["en", "zh", "en", "en"]  # the legacy row's completion " Lisbon" too
    tuned = result.models[0]
    rouge = [s["rouge_l"] for s in tuned.per_example]
    assert tuned.by_language["zh"] == {"examples": 1, "exact_match": tuned.per_example[1]["exact_match"],
                                       "rouge_l": rouge[1]}
    assert tuned.by_language["en"]["examples"] == 3
    assert tuned.by_language["en"]["rouge_l"] == pytest.approx((rouge[0] + rouge[2] + rouge[3]) / 3)
    # The demo's verdict line: each language's ROUGE-L from one model to the other, most rows first.
    en, zh = tuned.by_language["en"]["rouge_l"], tuned.by_language["zh"]["rouge_l"]
    expected = f" (English {en:.3f} -> {en:.3f}, Chinese {zh:.3f} -> {zh:.3f})"
    assert language_changes(result, tuned, tuned) == expected


@pytest.mark.parametrize("reference", ["Two years on the frame.", "车架保修两年。"])
def test_loss_covers_the_reference_tokens_only(open_server, tiny_model, tokenizer, reference):
    server = Server(open_server.base_url, "sk-any")
    short = Prompt("hi", reference, messages=[{"role": "user", "content": "hi"}])
    long = Prompt("?", reference, messages=[{"role": "system", "content": "Answer briefly, please."},
                                            {"role": "user", "content": "How long is the warranty, then?"}])
    a, b = (score_reference(server, tiny_model, p) for p in (short, long))
    expected = len(tokenizer(reference, add_special_tokens=False)["input_ids"])
    assert a.tokens == b.tokens == expected
    assert a.nll > 0 and a.nll != b.nll  # same tokens, different context


def test_a_chat_only_server_still_gives_the_answer_scores(keyed_server, tiny_model, heldout):
    [scores] = evaluate([Target(tiny_model, keyed_server.base_url, keyed_server.key)], heldout,
                        max_new_tokens=8).models
    assert scores.loss is scores.perplexity is scores.token_accuracy is None
    assert f"{keyed_server.base_url}/completions answered HTTP 404" in scores.unavailable
    assert len(scores.answers) == 4 and 0 <= scores.rouge_l <= 1


def test_server_errors_are_one_line(keyed_server, open_server, tiny_model, heldout):
    with pytest.raises(EvalServerError, match=r"HTTP 401 .*--api-key or OPENAI_API_KEY"):
        evaluate([Target(tiny_model, keyed_server.base_url, "sk-wrong")], heldout, limit=1)
    with pytest.raises(EvalServerError, match="HTTP 404 .*tuneforge models list"):
        evaluate([Target("ft:tiny-llama:personal::zzzzzzzz", open_server.base_url)], heldout, limit=1)


def test_bad_inputs_name_the_problem(tmp_path, tiny_model):
    target = Target(tiny_model, "http://127.0.0.1:9/v1")
    with pytest.raises(EvalInputError, match="no such file"):
        evaluate([target], tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n{oops\n')
    with pytest.raises(EvalInputError, match="line 1: a chat row without an assistant"):
        evaluate([target], bad)
