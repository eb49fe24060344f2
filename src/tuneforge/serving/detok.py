"""Incremental detokenization with stop sequences that never leak, even when they span tokens.

Text that could still be the start of a stop sequence is held back until the next token decides it, and a
half-decoded UTF-8 character (the tokenizer's U+FFFD) is never emitted.
"""

from __future__ import annotations

from tuneforge.serving.params import Delta, TokenInfo

_FOLD_EVERY = 32  # tokens decoded again each step before the settled prefix is folded away


class SequenceText:
    def __init__(self, index: int, tokenizer, stop: list[str]):
        self.index = index
        self._tok = tokenizer
        self._stop = [s for s in stop if s]
        self._ids: list[int] = []
        self._settled = ""  # decoded text of _ids[:_fold]
        self._fold = 0
        self.text = ""  # everything decoded so far (may end in a partial character)
        self.emitted = 0  # characters of `text` already sent
        self._pending: list[tuple[int, TokenInfo]] = []  # (char offset, token) not yet sent

    def _decode(self) -> str:
        tail = self._tok.decode(self._ids[self._fold:], skip_special_tokens=True)
        if len(self._ids) - self._fold >= _FOLD_EVERY and not tail.endswith("\ufffd"):
            self._settled += tail
            self._fold = len(self._ids)
            return self._settled
        return self._settled + tail

    def add(self, info: TokenInfo, special: bool) -> tuple[Delta | None, bool]:
        """Add one sampled token; returns the text that is now safe to send, and whether a stop matched."""
        start = len(self.text.rstrip("\ufffd"))
        self._ids.append(info.token_id)
        self.text = self._decode()
        if not special:
            self._pending.append((start, info))
        hit = self._find_stop()
        if hit is not None:
            self.text = self.text[:hit]
            return self._emit(hit), True
        return self._emit(self._safe_end()), False

    def flush(self) -> Delta | None:
        """At the end of the sequence: send whatever was held back (no stop can match any more)."""
        self.text = self.text.rstrip("\ufffd") if self.text.endswith("\ufffd") else self.text
        return self._emit(len(self.text), final=True)

    def _find_stop(self) -> int | None:
        best = None
        for s in self._stop:
            pos = self.text.find(s, max(0, self.emitted))
            if pos >= 0 and (best is None or pos < best):
                best = pos
        return best

    def _safe_end(self) -> int:
        text = self.text
        end = len(text)
        while end > self.emitted and text[end - 1] == "\ufffd":
            end -= 1
        hold = 0
        for s in self._stop:
            for k in range(min(len(s) - 1, end - self.emitted), hold, -1):
                if text.endswith(s[:k], 0, end):
                    hold = k
                    break
        return end - hold

    def _emit(self, end: int, final: bool = False) -> Delta | None:
        if end <= self.emitted and not (final and self._pending):
            return None
        tokens = [t for off, t in self._pending if off < end]
        self._pending = [] if final else [(o, t) for o, t in self._pending if o >= end]
        text = self.text[self.emitted:end]
        self.emitted = max(self.emitted, end)
        if not text and not tokens:
            return None
        return Delta(self.index, text, tokens)
