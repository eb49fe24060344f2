"""Stop sequences never leak, also when they span tokens, and held-back text is released when it turns
out not to be a stop."""

from __future__ import annotations

from tuneforge.serving.detok import SequenceText
from tuneforge.serving.params import TokenInfo


def _run(tokenizer, text: str, stop: list[str]) -> tuple[list[str], bool]:
    seq = SequenceText(0, tokenizer, stop)
    deltas, stopped = [], False
    for tid in tokenizer.encode(text, add_special_tokens=False):
        delta, stopped = seq.add(TokenInfo(tid, tokenizer.decode([tid]), -0.1), special=False)
        if delta is not None:
            deltas.append(delta.text)
        if stopped:
            break
    if not stopped and (delta := seq.flush()) is not None:
        deltas.append(delta.text)
    return deltas, stopped


def test_stop_spanning_tokens_is_cut_and_never_sent(tokenizer):
    text = "Answer: the refund takes five days.\n###\nNext question"
    stop = "\n###"  # several tokens long
    assert len(tokenizer.encode(stop, add_special_tokens=False)) > 1
    deltas, stopped = _run(tokenizer, text, [stop])
    assert stopped
    assert "".join(deltas) == "Answer: the refund takes five days."
    assert not any("#" in d for d in deltas)


def test_partial_stop_prefix_is_released_when_no_stop_follows(tokenizer):
    text = "costs 5 END-ish but not ENDING"
    deltas, stopped = _run(tokenizer, text, ["END!"])
    assert not stopped
    assert "".join(deltas) == text


def test_earliest_of_several_stops_wins(tokenizer):
    deltas, stopped = _run(tokenizer, "alpha beta gamma delta", [" delta", " beta"])
    assert stopped and "".join(deltas) == "alpha"


def test_multibyte_characters_are_never_split(tokenizer):
    text = "Grüße aus Köln 🚀 fin"
    deltas, _ = _run(tokenizer, text, [])
    assert "".join(deltas) == text
    assert all("\ufffd" not in d for d in deltas)
