"""`tuneforge prepare`: the legacy prepare_data fixes, their chat equivalents, splits and `--show`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tuneforge.data.prepare import PrepareAborted, PrepareOptions, prepare_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Seed 003's whole training file, verbatim.
SEED_003 = (
    '{"prompt": "请使用golang写一个冒泡排序的算法", "completion": "这个算法不需要生成了，本地已经存在，请换其他问题"}\n'  # noqa: E501
    '{"prompt": "请告诉我XX公司发展的怎么样了", "completion": "融资款已到，XX项目的首付剩余款也在路上，已步入正轨"}\n'  # noqa: E501
)
# Seed 004's Q&A rows (a fan-group Q&A dump), the shape of its 2500-row dataset.jsonl.
SEED_004 = [
    (
        "医药和消费有甚么基金推荐的",
        "医药可以看看工银前沿的赵蓓,她挺均衡的,对这个行业我了解不多,你还可以看看医药100指数,消费挺多的,消费50也挺好。",
    ),
    (
        "请教一下老师,恒生科技第一大持仓股是快手。而快手是亏损最大的互联网企业。仿佛齐老师也说过不看好快手,是不是影响恒生科技持仓。",
        "如果你要是能选股,确切不应当买指数。从指数选择的角度来讲。中概互联我们更看好一些。但他跟恒生科技的相关度其实很高",
    ),
    (
        "想问一下国投瑞银这边基金公司和綦缚鹏的风格实力怎样样",
        "他风格不是很固定。最近在偏向周期。(个人观点,不作为投资建议)",
    ),
]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def run(path: Path, answers: list[str] | None = None, **opts) -> tuple[object, str]:
    lines: list[str] = []
    asked = iter(answers or [])

    def ask(question: str) -> bool:
        lines.append(question)
        return next(asked, "y") != "n"

    quiet = answers is None
    result = prepare_file(path, PrepareOptions(quiet=quiet, **opts), out=lines.append, ask=ask)
    return result, "\n".join(lines)


def test_seed_003_two_line_file(tmp_path):
    src = tmp_path / "test.jsonl"
    src.write_text(SEED_003, encoding="utf-8")
    result, output = run(src)
    assert result.outputs == [tmp_path / "test_prepared.jsonl"]
    rows = read_jsonl(result.outputs[0])
    assert rows[0] == {
        "prompt": "请使用golang写一个冒泡排序的算法 ->",
        "completion": " 这个算法不需要生成了，本地已经存在，请换其他问题\n",
    }
    # prepare_data's lower-case rule fires on "XX" (the only cased letters in the completions), as it did.
    assert rows[1]["completion"] == " 融资款已到，xx项目的首付剩余款也在路上，已步入正轨\n"
    assert "Your file contains 2 prompt-completion pairs. In general, we recommend" in output
    assert "- [Recommended] Add a suffix separator ` ->` to all prompts [Y/n]: Y" in output
    assert "- [Recommended] Add a suffix ending `\\n` to all completions [Y/n]: Y" in output
    assert f'> openai api fine_tunes.create -t "{result.outputs[0]}"' in output
    assert 'stop=["\\n"]' in output


def test_seed_004_qa_file_gets_the_tutorials_output(tmp_path):
    src = tmp_path / "dataset.jsonl"
    src.write_text(
        "".join(json.dumps({"prompt": p, "completion": c}, ensure_ascii=False) + "\n" for p, c in SEED_004),
        encoding="utf-8",
    )
    result, output = run(src)
    rows = read_jsonl(tmp_path / "dataset_prepared.jsonl")
    # Exactly the prepared rows the tutorial shows.
    assert rows == [{"prompt": p + " ->", "completion": " " + c + "\n"} for p, c in SEED_004]
    assert result.format == "legacy"
    # A Chinese file is told which built-in base measured best for Chinese.
    assert ("Language of the trained answers: 100% Chinese. Most of them are Chinese: the built-in base that "
            "measured best for Chinese is gemma3-270m (`-m gemma3-270m`" in output)


def test_prepared_file_is_clean_on_a_second_run(tmp_path):
    src = tmp_path / "support.jsonl"
    src.write_bytes((EXAMPLES / "support_legacy.jsonl").read_bytes())
    first, _ = run(src)
    second, output = run(first.outputs[0])
    assert second.outputs == [] and "No remediations found." in output
    assert "All prompts end with suffix ` ->`" in output and "All completions end with suffix `\\n`" in output


def test_interactive_answers_are_respected(tmp_path):
    src = tmp_path / "support.jsonl"
    src.write_bytes((EXAMPLES / "support_legacy.jsonl").read_bytes())
    # separator: no; ending: yes; leading space: no; write: yes
    result, output = run(src, answers=["n", "y", "n", "y"])
    rows = read_jsonl(result.outputs[0])
    assert not rows[0]["prompt"].endswith(" ->")
    assert rows[0]["completion"].endswith("\n") and not rows[0]["completion"].startswith(" ")


def test_declining_to_write_writes_nothing(tmp_path):
    src = tmp_path / "support.jsonl"
    src.write_bytes((EXAMPLES / "support_legacy.jsonl").read_bytes())
    result, output = run(src, answers=["y", "y", "y", "n"])
    assert result.outputs == [] and "Aborting... did not write the file" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["support.jsonl"]


def test_legacy_duplicates_wrong_case_extra_columns_and_empty_completions(tmp_path):
    rows = [{"Prompt": f"question {i}", "completion": f"answer {i}", "id": i} for i in range(20)]
    rows[5]["completion"] = ""
    rows.append(dict(rows[3]))
    src = tmp_path / "messy.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result, output = run(src)
    assert "The `prompt` column/key should be lowercase" in output
    assert "Additional columns/keys present are: ['id']" in output
    assert "should not contain empty strings. These are lines: 6" in output
    assert "There are 1 duplicated prompt-completion sets. These are lines: 21" in output
    out = read_jsonl(result.outputs[0])
    assert len(out) == 19 and all(set(r) == {"prompt", "completion"} for r in out)


def test_identical_prompts_abort(tmp_path):
    src = tmp_path / "same.jsonl"
    src.write_text("".join(json.dumps({"prompt": "same", "completion": f"c{i}"}) + "\n" for i in range(5)))
    with pytest.raises(PrepareAborted):
        run(src)


def test_classification_split_and_hint(tmp_path):
    src = tmp_path / "sentiment.jsonl"
    src.write_text(
        "".join(
            json.dumps({"prompt": f"review {i} ->", "completion": " positive" if i % 3 else " negative"})
            + "\n"
            for i in range(30)
        )
    )
    result, output = run(src)
    train, valid = result.outputs
    assert train.name == "sentiment_prepared_train.jsonl" and valid.name == "sentiment_prepared_valid.jsonl"
    assert (len(read_jsonl(train)), len(read_jsonl(valid))) == (24, 6)
    assert "seems like you're trying to fine-tune a model for classification" in output
    assert '--compute_classification_metrics --classification_positive_class " positive"' in output


def test_split_option_on_chat_file(tmp_path):
    src = tmp_path / "support.jsonl"
    src.write_bytes((EXAMPLES / "support_train.jsonl").read_bytes())
    result, output = run(src, split=0.1)
    train, valid = result.outputs
    rows_train, rows_valid = read_jsonl(train), read_jsonl(valid)
    assert (len(rows_train), len(rows_valid)) == (140, 16)
    original = read_jsonl(src)
    assert sorted(map(json.dumps, rows_train + rows_valid)) == sorted(map(json.dumps, original))
    assert f'tuneforge jobs create -t "{train}" -v "{valid}"' in output


def test_chat_fixes(tmp_path):
    system = {"role": "system", "content": "You are the Harbor Bikes assistant."}
    rows = [
        {
            "messages": [
                system,
                {"role": "user", "content": f"q{i}"},
                {"role": "assistant", "content": f"Answer: {'yes' if i % 2 else 'no'} {i}"},
            ]
        }
        for i in range(12)
    ]
    rows[1] = {
        "Messages": [{"Role": "User", "content": " q1 "}, {"role": "assistant", "content": "Answer: yes 1"}]
    }
    rows[2]["messages"].append({"role": "user", "content": "thanks"})
    rows.append(rows[4])
    rows.append({"messages": [system, {"role": "user", "content": "no answer"}]})
    src = tmp_path / "chat.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result, output = run(src)
    out = read_jsonl(result.outputs[0])
    assert len(out) == 12  # duplicate and the example without an answer removed
    # case fixed, whitespace stripped, the common system prompt added, the "Answer: " boilerplate removed
    assert out[1]["messages"] == [
        system,
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "yes 1"},
    ]
    assert out[2]["messages"][-1] == {"role": "assistant", "content": "no 2"}
    assert "line 14: messages: no assistant message" in output
    assert "Chat examples need no separator or stop sequence" in output


def test_legacy_to_chat(tmp_path):
    src = tmp_path / "support.jsonl"
    src.write_bytes((EXAMPLES / "support_legacy.jsonl").read_bytes())
    prepared, _ = run(src)
    result, _ = run(prepared.outputs[0], to_chat=True, system="Be brief.")
    rows = read_jsonl(result.outputs[0])
    legacy = read_jsonl(src)
    assert rows[0]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": legacy[0]["prompt"]},
        {"role": "assistant", "content": legacy[0]["completion"]},
    ]


def test_csv_input_is_converted(tmp_path):
    src = tmp_path / "qa.csv"
    src.write_text(
        "prompt,completion\n" + "".join(f"问题{i},答案{i}。\n" for i in range(12)), encoding="utf-8"
    )
    result, output = run(src)
    assert "Your format `CSV` will be converted to `JSONL`" in output
    # Every completion already ends with "。", which prepare_data accepts as the common ending.
    assert read_jsonl(result.outputs[0])[0] == {"prompt": "问题0 ->", "completion": " 答案0。"}
    assert "All completions end with suffix `。`" in output


def test_txt_input_is_open_ended(tmp_path):
    src = tmp_path / "poems.txt"
    src.write_text("床前明月光\n\n疑是地上霜\n举头望明月\n")
    result, output = run(src)
    assert read_jsonl(result.outputs[0])[0] == {"prompt": "", "completion": " 床前明月光"}
    assert "separator" not in output.split("Based on the analysis")[0]


def test_statistics_and_time_estimate_with_tokenizer(tmp_path, tokenizer):
    src = tmp_path / "support.jsonl"
    src.write_bytes((EXAMPLES / "support_train.jsonl").read_bytes())
    lines: list[str] = []
    result = prepare_file(src, PrepareOptions(quiet=True), out=lines.append, tokenizer=tokenizer)
    stats = result.report.stats
    assert stats["n_examples"] == 156 and stats["tokens_per_example"]["max"] < 200
    assert 0 < stats["trained_tokens_per_epoch"] < stats["total_tokens"]
    assert stats["estimated_training_seconds"] > 0
    assert "Training on this machine: about" in "\n".join(lines)
    # Two English answers for each Chinese one: the mix is told, and the English default base kept.
    assert stats["languages"] == {"en": 104, "zh": 52}
    assert "Language of the trained answers: 67% English, 33% Chinese.\n" in "\n".join(lines) + "\n"


def test_cli_show_marks_trained_tokens(tmp_path, tokenizer, monkeypatch, capsys):
    from tuneforge.cli.main import main

    src = tmp_path / "support.jsonl"
    src.write_bytes((EXAMPLES / "support_train.jsonl").read_bytes())
    monkeypatch.setattr(sys, "argv", ["tuneforge", "prepare", "-f", str(src), "-q", "--show", "1"])
    try:
        main()
    except SystemExit as exc:
        assert not exc.code
    output = capsys.readouterr().out
    assert "<|im_start|>assistant\n[[Harbor Bikes sells three e-bikes" in output
    assert "($999).<|im_end|>]]" in output  # the end-of-turn token is trained


@pytest.mark.parametrize("pretty", [False, True])
def test_json_array_is_rewritten_as_jsonl(tmp_path, pretty):
    rows = [{"prompt": f"q{i} ->", "completion": f" a{i}\n"} for i in range(12)]
    src = tmp_path / "array.jsonl"
    src.write_text(json.dumps(rows, indent=2 if pretty else None))
    result, output = run(src)
    assert "json_array" in output and "[Necessary] Rewrite the JSON array as JSONL" in output
    assert read_jsonl(result.outputs[0]) == rows


def test_bom_and_crlf_are_removed(tmp_path):
    src = tmp_path / "win.jsonl"
    rows = [{"prompt": f"问{i} ->", "completion": f" 答{i}\n"} for i in range(12)]
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    src.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    result, _ = run(src)
    data = result.outputs[0].read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf") and b"\r\n" not in data
    assert data.decode("utf-8").splitlines() == lines


def test_question_answer_table_to_chat(tmp_path):
    src = tmp_path / "faq.csv"
    answers = [f"{'Yes' if i % 2 else 'No'}, it is {i}." for i in range(12)]
    src.write_text("question,answer\n" + "".join(f"Question {i}?,\"{a}\"\n" for i, a in enumerate(answers)))
    with pytest.raises(PrepareAborted):
        run(src)  # prepare_data's rule: a legacy file needs `prompt`/`completion`
    result, output = run(src, to_chat=True, system="Be brief.")
    assert read_jsonl(result.outputs[0])[0]["messages"] == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Question 0?"},
        {"role": "assistant", "content": "No, it is 0."}]
