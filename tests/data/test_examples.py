"""The bundled Harbor Bikes dataset: valid, bilingual, consistent, and a held-out set that does not leak."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

from tuneforge.data.validate import validate_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CJK = re.compile(r"[\u4e00-\u9fff]")


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (EXAMPLES / name).read_text("utf-8").splitlines()]


def test_files_validate_clean():
    train = validate_file(EXAMPLES / "support_train.jsonl")
    assert train.ok and train.format == "chat" and train.n_examples >= 150 and train.findings == []
    heldout = validate_file(EXAMPLES / "support_heldout.jsonl", min_examples=10)
    assert heldout.ok and heldout.format == "chat" and 25 <= heldout.n_examples <= 50
    legacy = validate_file(EXAMPLES / "support_legacy.jsonl")
    assert legacy.ok and legacy.format == "legacy" and legacy.n_examples == train.n_examples


def test_about_a_third_chinese_and_one_system_prompt():
    train = rows("support_train.jsonl")
    chinese = [r for r in train if CJK.search(r["messages"][1]["content"])]
    assert 0.28 <= len(chinese) / len(train) <= 0.4
    assert len({r["messages"][0]["content"] for r in train}) == 1
    assert all([m["role"] for m in r["messages"]] == ["system", "user", "assistant"] for r in train)


def test_answers_are_consistent_and_heldout_is_paraphrased():
    train, heldout = rows("support_train.jsonl"), rows("support_heldout.jsonl")
    answers_by_question = defaultdict(set)
    for r in train:
        answers_by_question[r["messages"][1]["content"]].add(r["messages"][2]["content"])
    assert all(len(a) == 1 for a in answers_by_question.values())
    train_answers = {r["messages"][2]["content"] for r in train}
    for r in heldout:
        assert r["messages"][1]["content"] not in answers_by_question  # not verbatim from training
        assert r["messages"][2]["content"] in train_answers  # the reference is a trained fact


def test_generator_reproduces_the_files(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("build", EXAMPLES / "build_support_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    train, heldout, legacy = module.build()
    assert train == rows("support_train.jsonl") and heldout == rows("support_heldout.jsonl")
    assert legacy == rows("support_legacy.jsonl")
