"""Build a small preference (DPO) set from the bundled support data: for each support question, the
support answer is preferred over a curt, unhelpful one. Run from the repo root:

    python examples/build_preference_dataset.py

Writes `support_preference_train.jsonl` (from support_train.jsonl) and `support_preference_heldout.jsonl`
(from support_heldout.jsonl, with rejected answers worded differently from the training ones), in OpenAI's
DPO line format: `{"input": {"messages": [...]}, "preferred_output": [...], "non_preferred_output": [...]}`.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent

RUDE_TRAIN = {
    "en": ["I don't know. Look it up yourself.", "Not my problem, ask someone else.",
           "Figure it out, it's all on the website.", "Why are you asking me? Stop bothering support."],
    "zh": ["我不知道，自己去查。", "这不关我的事，问别人吧。"],
}
RUDE_HELDOUT = {
    "en": ["Can't help you. Go read the manual.", "No idea, and I don't care."],
    "zh": ["帮不了你，自己看说明书。"],
}


def _lang(text: str) -> str:
    return "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in text) else "en"


def preference_rows(chat_rows: list[dict], rude: dict[str, list[str]]) -> list[dict]:
    out, seen = [], {"en": 0, "zh": 0}
    for row in chat_rows:
        *prompt, answer = row["messages"]
        lang = _lang(prompt[-1]["content"])
        rejected = rude[lang][seen[lang] % len(rude[lang])]
        seen[lang] += 1
        out.append({"input": {"messages": prompt},
                    "preferred_output": [{"role": "assistant", "content": answer["content"]}],
                    "non_preferred_output": [{"role": "assistant", "content": rejected}]})
    return out


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def main() -> None:
    _write(HERE / "support_preference_train.jsonl",
           preference_rows(_read(HERE / "support_train.jsonl"), RUDE_TRAIN))
    _write(HERE / "support_preference_heldout.jsonl",
           preference_rows(_read(HERE / "support_heldout.jsonl"), RUDE_HELDOUT))


if __name__ == "__main__":
    main()
