"""Which language a text is written in, told by its script: what per-language quality figures and the
language mix `tuneforge prepare` reports are keyed by.

Only scripts are told apart (nothing is downloaded, no language model runs): Han ideographs are Chinese,
kana Japanese, hangul Korean, and Latin letters are counted as English, the one Latin-script language the
built-in bases are tuned for. A Chinese character carries about as much as an English word, so characters
of the CJK scripts are weighed against Latin *words*; the heavier script names the text. A text with
neither (numbers, emoji) is "other".
"""

from __future__ import annotations

import re
from collections import Counter

NAMES = {"en": "English", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "other": "other"}
_SCRIPTS = {
    "zh": re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"),
    "ja": re.compile(r"[\u3040-\u30ff]"),
    "ko": re.compile(r"[\uac00-\ud7af]"),
    "en": re.compile(r"[A-Za-z\u00c0-\u024f]+"),
}


def language_of(text: str) -> str:
    """'en', 'zh', 'ja', 'ko' or 'other' (see the module docstring)."""
    counts = {code: len(pattern.findall(text)) for code, pattern in _SCRIPTS.items()}
    if counts["ja"]:  # Japanese mixes kanji (Han) with kana; kana alone is never Chinese
        counts["ja"] += counts.pop("zh")
    code, weight = max(counts.items(), key=lambda kv: kv[1])
    return code if weight else "other"


def answer_language(row: dict) -> str:
    """The language of what a training row teaches: its assistant messages (chat) or its completion
    (legacy). What prepare's language mix and the per-language validation figures count by."""
    messages = row.get("messages")
    if isinstance(messages, list):
        return language_of(" ".join(m["content"] for m in messages if isinstance(m, dict)
                                    and m.get("role") == "assistant" and isinstance(m.get("content"), str)))
    completion = row.get("completion")
    return language_of(completion if isinstance(completion, str) else "")


def name_of(code: str) -> str:
    return NAMES.get(code, code)


def mix(texts) -> Counter:
    """How many of `texts` are in each language."""
    return Counter(language_of(text) for text in texts)


def describe_mix(counts: Counter) -> str:
    """'60% English, 40% Chinese' (largest first)."""
    total = sum(counts.values()) or 1
    return ", ".join(f"{100 * n / total:.0f}% {name_of(code)}" for code, n in counts.most_common())


# The built-in base that scored best on held-out questions per language (benchmarks/quality_by_language.py,
# docs/training.md "Languages": Chinese held-out ROUGE-L 0.30-0.40 for gemma3-270m, 0.21-0.28 for the
# default base); English is the default base's own (0.63-0.69 against 0.27-0.45). Languages not measured
# have no entry.
BEST_BASE_FOR: dict[str, str] = {"zh": "gemma3-270m"}


def base_advice(languages: dict[str, int]) -> str:
    """A sentence recommending a base when most trained answers are in a language another base serves
    better; '' otherwise."""
    total = sum(languages.values())
    if not total:
        return ""
    code, n = max(languages.items(), key=lambda kv: kv[1])
    best = BEST_BASE_FOR.get(code)
    if code == "en" or not best or n * 2 <= total:
        return ""
    return (f"Most of them are {name_of(code)}: the built-in base that measured best for {name_of(code)} is "
            f"{best} (`-m {best}`; docs/training.md, \"Languages\").")
