"""Answer-vs-reference text scores: exact match and ROUGE-L F1, character-level for CJK text.

ROUGE-L is a longest-common-subsequence F-measure; the common packages tokenize on ASCII word characters
only (they drop Chinese entirely), so the tokenization here is ours and the LCS is a plain DP.
"""

from __future__ import annotations

import re
import unicodedata

# CJK ideographs, kana and hangul are scored one character per token: Chinese has no spaces to split on.
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+", re.UNICODE)


def normalize(text: str) -> str:
    """Case, width and whitespace folded, so `Hello  world.` equals `hello world.`."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalize(text))


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize(prediction) == normalize(reference))


def _lcs(a: list[str], b: list[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 in [0, 1] between the two texts' tokens (punctuation ignored)."""
    pred, ref = tokens(prediction), tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    lcs = _lcs(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)
