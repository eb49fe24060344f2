"""evaluate() on the tiny model: a model trained on the held-out rows must beat its base on every score."""

from __future__ import annotations

import pytest

from tuneforge.evaluation.errors import EvalInputError, ModelLookupError
from tuneforge.evaluation.loading import resolve_local
from tuneforge.evaluation.report import render_html
from tuneforge.evaluation.run import evaluate


def test_tuned_adapter_beats_its_base(tiny_model, tuned_adapter, heldout, settings):
    result = evaluate([str(tuned_adapter), tiny_model], heldout, settings=settings, max_new_tokens=24)
    tuned, base = result.models
    assert len(tuned.answers) == len(base.answers) == 4
    assert tuned.loss < base.loss and tuned.perplexity < base.perplexity
    assert tuned.token_accuracy > base.token_accuracy
    assert tuned.rouge_l > base.rouge_l
    assert result.best().model == str(tuned_adapter)
    assert result.references[1] == "车架保修两年。" and result.questions[3] == "Shop city ->"

    html = render_html(result)
    assert "车架保修两年。" in html and "<script" not in html and "http" not in html.split("<body>")[1]
    assert html.count("<tr>") == 1 + 5 + 1 + 4  # summary header, 5 metrics, answers header, 4 rows


def test_bad_inputs_name_the_problem(tmp_path, tiny_model, settings):
    with pytest.raises(EvalInputError, match="no such file"):
        evaluate([tiny_model], tmp_path / "missing.jsonl", settings=settings)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n{oops\n')
    with pytest.raises(EvalInputError, match="line 1: a chat row without an assistant"):
        evaluate([tiny_model], bad, settings=settings)
    with pytest.raises(ModelLookupError, match="tuneforge models list"):
        resolve_local("ft:tiny-llama:personal::abcd1234", settings)
