"""Answer-vs-reference text scores: exact match and ROUGE-L F1, character-level for CJK text.

The tokenization (CJK one character per token, case/width/whitespace folded) and ROUGE-L live in one
place, the graders' metrics, which `text_similarity` graders use too; evaluation scores with the same code.
"""

from __future__ import annotations

from tuneforge.graders.metrics import fold as normalize
from tuneforge.graders.metrics import rouge_l, tokens

__all__ = ["exact_match", "normalize", "rouge_l", "tokens"]


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize(prediction) == normalize(reference))
