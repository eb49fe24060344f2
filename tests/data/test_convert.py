"""`tuneforge convert`: every supported source into chat JSONL, with non-Latin text kept exactly."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from tuneforge.data.convert import ConvertOptions, convert_file
from tuneforge.data.io import DataFileError
from tuneforge.data.validate import validate_file

HEADER = [
    "tweet_id",
    "author_id",
    "inbound",
    "created_at",
    "text",
    "response_tweet_id",
    "in_response_to_tweet_id",
]
T = "Tue Oct 31 {}:00 +0000 2017"
# Deliberately out of order, as the Kaggle export is.
TWEETS = [
    # thread A: customer -> agent -> customer -> agent -> customer (trailing "thanks" is not trained)
    [
        "1",
        "HarborHelp",
        "False",
        T.format("22:10"),
        "@115712 Thanks! A tracking link is on its way.",
        "2",
        "3",
    ],
    ["2", "115712", "True", T.format("22:11"), "@HarborHelp thanks", "", "1"],
    ["3", "115712", "True", T.format("22:08"), "@HarborHelp It is HB-1042.", "1", "4"],
    ["4", "HarborHelp", "False", T.format("21:54"), "@115712 Sorry! What is your order number?", "3", "5"],
    ["5", "115712", "True", T.format("21:49"), "@HarborHelp where is my bike??", "4", ""],
    # thread B: one Chinese question, two separate agent answers (two conversations, earliest first)
    ["10", "8801", "True", T.format("10:00"), "@HarborHelp 我的订单到哪里了？", "11,12", ""],
    [
        "11",
        "HarborHelp",
        "False",
        T.format("10:30"),
        "@8801 请访问 harborbikes.example/orders 查询。",
        "",
        "10",
    ],
    ["12", "HarborHelp", "False", T.format("10:05"), "@8801 您好！请提供订单号。", "", "10"],
    # thread C: never answered; thread D: a company announcement
    ["20", "9000", "True", T.format("09:00"), "@HarborHelp hello?", "", ""],
    ["30", "HarborHelp", "False", T.format("08:00"), "New: the Harbor Fold!", "", ""],
    # thread E: two customer tweets in a row become one user turn
    ["40", "7777", "True", T.format("07:00"), "@HarborHelp Do you ship to Canada?", "41", ""],
    ["41", "7777", "True", T.format("07:01"), "@HarborHelp Or Mexico?", "42", "40"],
    ["42", "HarborHelp", "False", T.format("07:05"), "@7777 We ship to the US and Canada only.", "", "41"],
]


def write_csv(path: Path, rows: list[list[str]], header=HEADER, delimiter=",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def turns(row: dict) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in row["messages"]]


def test_tweet_threads_rebuild_conversations_in_order(tmp_path):
    rows, how, _ = convert_file(
        write_csv(tmp_path / "twcs.csv", TWEETS), ConvertOptions(system="You are Harbor Bikes support.")
    )
    assert how == "tweets" and len(rows) == 4
    by_first_user = {r["messages"][1]["content"]: r for r in rows}
    assert turns(rows[0]) == [
        ("system", "You are Harbor Bikes support."),
        ("user", "where is my bike??"),
        ("assistant", "Sorry! What is your order number?"),
        ("user", "It is HB-1042."),
        ("assistant", "Thanks! A tracking link is on its way."),
    ]
    branches = [r for r in rows if r["messages"][1]["content"] == "我的订单到哪里了？"]
    assert [b["messages"][2]["content"] for b in branches] == [
        "您好！请提供订单号。",
        "请访问 harborbikes.example/orders 查询。",
    ]
    assert turns(by_first_user["Do you ship to Canada?\nOr Mexico?"])[1:] == [
        ("user", "Do you ship to Canada?\nOr Mexico?"),
        ("assistant", "We ship to the US and Canada only."),
    ]


def test_tweet_threads_agent_filter_and_mentions(tmp_path):
    rows = TWEETS + [
        ["50", "1234", "True", T.format("06:00"), "@OtherCo hi", "51", ""],
        ["51", "OtherCo", "False", T.format("06:01"), "@1234 hello", "", "50"],
    ]
    path = write_csv(tmp_path / "twcs.csv", rows)
    assert len(convert_file(path, ConvertOptions())[0]) == 5
    kept = convert_file(path, ConvertOptions(agent="OtherCo", keep_mentions=True))[0]
    assert [turns(r) for r in kept] == [[("user", "@OtherCo hi"), ("assistant", "@1234 hello")]]


def test_cli_convert_tweets_then_validate(tmp_path, monkeypatch, capsys):
    from tuneforge.cli.main import main

    path = write_csv(tmp_path / "twcs.csv", TWEETS)
    monkeypatch.setattr(sys, "argv", ["tuneforge", "convert", str(path), "--system", "Be kind."])
    try:
        main()
    except SystemExit as exc:
        assert not exc.code
    output = capsys.readouterr().out
    target = tmp_path / "twcs_chat.jsonl"
    assert f"wrote 4 conversation(s) to {target}" in output
    assert f"Next: tuneforge prepare -f {target}" in output
    report = validate_file(target, min_examples=1)
    assert report.ok and report.format == "chat" and report.n_examples == 4


def test_chinese_round_trips_byte_for_byte(tmp_path):
    text = "退货期 30 天，客服电话 +1-800-555-0142 😀 «ünïcödé» \u200b"
    rows = [{"prompt": f"问{i}：{text}", "completion": f"答{i}：{text}"} for i in range(3)]
    src = tmp_path / "zh.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out, how, _ = convert_file(src, ConvertOptions())
    assert how == "legacy"
    assert [r["messages"][0]["content"] for r in out] == [r["prompt"] for r in rows]
    assert [r["messages"][1]["content"] for r in out] == [r["completion"] for r in rows]
    from tuneforge.data.io import read_examples, write_jsonl

    target = tmp_path / "zh_chat.jsonl"
    write_jsonl(target, out)
    assert "\\u" not in target.read_text("utf-8")  # written as text, not escapes
    assert read_examples(target) == out


def test_legacy_formatting_is_undone(tmp_path):
    src = tmp_path / "prepared.jsonl"
    src.write_text(
        "".join(json.dumps({"prompt": f"q{i} ->", "completion": f" a{i}\n"}) + "\n" for i in range(3))
    )
    out, _, _ = convert_file(src, ConvertOptions())
    assert turns(out[1]) == [("user", "q1"), ("assistant", "a1")]


def test_alpaca_json_array(tmp_path):
    src = tmp_path / "alpaca.json"
    src.write_text(
        json.dumps(
            [
                {"instruction": "Translate to French", "input": "Hello", "output": "Bonjour"},
                {"instruction": "Say hi", "input": "", "output": "Hi!"},
            ]
        )
    )
    out, how, _ = convert_file(src, ConvertOptions(system="S"))
    assert how == "alpaca"
    assert turns(out[0]) == [
        ("system", "S"),
        ("user", "Translate to French\n\nHello"),
        ("assistant", "Bonjour"),
    ]
    assert turns(out[1])[1] == ("user", "Say hi")


def test_sharegpt_jsonl(tmp_path):
    src = tmp_path / "sharegpt.jsonl"
    src.write_text(
        json.dumps(
            {
                "conversations": [
                    {"from": "system", "value": "Be brief."},
                    {"from": "human", "value": "Hi"},
                    {"from": "gpt", "value": "Hello"},
                    {"from": "human", "value": "Bye"},
                    {"from": "gpt", "value": "Bye!"},
                ]
            }
        )
        + "\n"
    )
    out, how, _ = convert_file(src, ConvertOptions())
    assert how == "sharegpt"
    assert [r for r, _ in turns(out[0])] == ["system", "user", "assistant", "user", "assistant"]


def test_sharegpt_unknown_speaker_names_line(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps({"conversations": [{"from": "robot", "value": "x"}]}) + "\n")
    with pytest.raises(DataFileError, match=r"line 1: conversations\[0\]\.from is `robot`"):
        convert_file(src, ConvertOptions())


def test_csv_and_tsv_with_recognised_and_chosen_columns(tmp_path):
    path = write_csv(
        tmp_path / "faq.csv", [["退货期多久？", "30 天。", "x"]], header=["问题", "答案", "备注"]
    )
    out, how, _ = convert_file(path, ConvertOptions())
    assert turns(out[0]) == [("user", "退货期多久？"), ("assistant", "30 天。")] and "问题" in how
    path = write_csv(tmp_path / "faq.tsv", [["a", "q", "s1"]], header=["reply", "ask", "sys"], delimiter="\t")
    with pytest.raises(DataFileError, match="--user-column COL --assistant-column COL"):
        convert_file(path, ConvertOptions())
    out, _, _ = convert_file(
        path, ConvertOptions(user_column="ask", assistant_column="reply", system_column="sys")
    )
    assert turns(out[0]) == [("system", "s1"), ("user", "q"), ("assistant", "a")]


def test_xlsx(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "FAQ"
    sheet.append(["question", "answer"])
    sheet.append(["What is the warranty?", "Frame 5 years."])
    sheet.append([None, None])
    sheet.append(["保修期是多久？", 5])
    path = tmp_path / "faq.xlsx"
    book.save(path)
    out, _, _ = convert_file(path, ConvertOptions(sheet="FAQ"))
    assert [turns(r) for r in out] == [
        [("user", "What is the warranty?"), ("assistant", "Frame 5 years.")],
        [("user", "保修期是多久？"), ("assistant", "5")],
    ]
    with pytest.raises(DataFileError, match="no sheet `Nope`; sheets: FAQ"):
        convert_file(path, ConvertOptions(sheet="Nope"))


def test_txt_turns(tmp_path):
    src = tmp_path / "faq.txt"
    src.write_text(
        "Q: Do you ship to Canada?\nA: Yes.\nWe also ship to the US.\n\n问：退货期多久？\n答：30 天。\n",
        encoding="utf-8",
    )
    out, _, _ = convert_file(src, ConvertOptions())
    assert [turns(r) for r in out] == [
        [("user", "Do you ship to Canada?"), ("assistant", "Yes.\nWe also ship to the US.")],
        [("user", "退货期多久？"), ("assistant", "30 天。")],
    ]
    bad = tmp_path / "plain.txt"
    bad.write_text("just some text\n")
    with pytest.raises(DataFileError, match="line 1: a turn must start with `Q:`"):
        convert_file(bad, ConvertOptions())
