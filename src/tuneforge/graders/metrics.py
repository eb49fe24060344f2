"""The text_similarity metrics, each a score in [0, 1] between a prediction and a reference.

Text is NFKC- and case-folded and split into words; CJK ideographs, kana and hangul count one character
per token (Chinese has no spaces to split on), as in the evaluation package's ROUGE-L. No library in the
environment does these without downloading data, so they are small implementations of the published
definitions:

- `fuzzy_match`: difflib's SequenceMatcher ratio on the folded strings.
- `bleu`: sentence BLEU-4 (geometric mean of clipped 1..4-gram precisions, brevity penalty; a prediction
  under 4 tokens uses the orders it has); a zero n-gram count is smoothed to 0.1 (NLTK's "method 1") so
  short texts do not collapse to 0.
- `gleu`: Google's sentence GLEU: min(precision, recall) over all 1..4-grams.
- `meteor`: METEOR with exact token matches only (no stemming, no WordNet synonyms: nothing is
  downloaded): F-mean (recall weighted 9:1) times (1 - 0.5 * (chunks / matches)^3).
- `rouge_1`..`rouge_5`: n-gram overlap F1; `rouge_l`: longest-common-subsequence F1.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections import Counter

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+", re.UNICODE)


def fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(fold(text))


def _ngrams(toks: list[str], n: int) -> Counter:
    return Counter(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))


def _f1(overlap: int, n_pred: int, n_ref: int) -> float:
    if overlap == 0:
        return 0.0
    p, r = overlap / n_pred, overlap / n_ref
    return 2 * p * r / (p + r)


def fuzzy_match(pred: str, ref: str) -> float:
    return difflib.SequenceMatcher(None, fold(pred), fold(ref), autojunk=False).ratio()


def bleu(pred: str, ref: str) -> float:
    hyp, rf = tokens(pred), tokens(ref)
    if not hyp or not rf:
        return float(hyp == rf)
    logs = []
    for n in range(1, 5):
        total = max(len(hyp) - n + 1, 0)
        if total == 0:
            break
        h, r = _ngrams(hyp, n), _ngrams(rf, n)
        matched = sum(min(c, r[g]) for g, c in h.items())
        logs.append(math.log((matched or 0.1) / total))
    brevity = 1.0 if len(hyp) > len(rf) else math.exp(1 - len(rf) / len(hyp))
    return brevity * math.exp(sum(logs) / len(logs))


def gleu(pred: str, ref: str) -> float:
    hyp, rf = tokens(pred), tokens(ref)
    if not hyp or not rf:
        return float(hyp == rf)
    matched = n_hyp = n_ref = 0
    for n in range(1, 5):
        h, r = _ngrams(hyp, n), _ngrams(rf, n)
        matched += sum((h & r).values())
        n_hyp, n_ref = n_hyp + sum(h.values()), n_ref + sum(r.values())
    return min(matched / n_hyp, matched / n_ref) if n_hyp and n_ref else 0.0


def _align(hyp: list[str], rf: list[str]) -> list[tuple[int, int]]:
    used: set[int] = set()
    pairs = []
    for i, tok in enumerate(hyp):
        for j, other in enumerate(rf):
            if j not in used and tok == other:
                used.add(j)
                pairs.append((i, j))
                break
    return pairs


def meteor(pred: str, ref: str) -> float:
    hyp, rf = tokens(pred), tokens(ref)
    pairs = _align(hyp, rf)
    m = len(pairs)
    if m == 0:
        return float(not hyp and not rf)
    p, r = m / len(hyp), m / len(rf)
    fmean = 10 * p * r / (r + 9 * p)
    steps = zip(pairs, pairs[1:], strict=False)
    chunks = 1 + sum(1 for (a, b), (c, d) in steps if not (c == a + 1 and d == b + 1))
    return fmean * (1 - 0.5 * (chunks / m) ** 3)


def rouge_n(pred: str, ref: str, n: int) -> float:
    hyp, rf = tokens(pred), tokens(ref)
    h, r = _ngrams(hyp, n), _ngrams(rf, n)
    if not h or not r:
        return float(hyp == rf)
    return _f1(sum((h & r).values()), sum(h.values()), sum(r.values()))


def _lcs(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_l(pred: str, ref: str) -> float:
    hyp, rf = tokens(pred), tokens(ref)
    if not hyp or not rf:
        return float(hyp == rf)
    return _f1(_lcs(hyp, rf), len(hyp), len(rf))


METRICS = {"fuzzy_match": fuzzy_match, "bleu": bleu, "gleu": gleu, "meteor": meteor, "rouge_l": rouge_l,
           **{f"rouge_{n}": (lambda p, r, n=n: rouge_n(p, r, n)) for n in range(1, 6)}}
