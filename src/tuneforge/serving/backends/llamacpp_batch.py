"""The llama.cpp backend's running batch: one llama.cpp sequence per row in the model's one context."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import torch

from tuneforge.serving.params import ServingError

if TYPE_CHECKING:
    from tuneforge.serving.backends.llamacpp import LlamaCppModel


class LlamaCppBatch:
    """The running rows of a `LlamaCppModel`: one llama.cpp sequence id per row, in row order.

    It counts the KV cells its rows hold, so the engine can keep the shared pool from overflowing: a
    prompt's cells are shared by the `n` rows copied from it and freed with the last of them; each row
    then holds one more cell per generated token.
    """

    def __init__(self, model: LlamaCppModel):
        self.model = model
        self.seqs: list[int] = []
        self._free = list(range(model.n_seq_max - 1, -1, -1))  # pop() hands out 0, 1, 2, ...
        self._prompts = itertools.count()
        self._prompt_of: dict[int, int] = {}  # seq -> the prompt (a number) whose cells it shares
        self._prompt_cells: dict[int, int] = {}  # prompt -> its length
        self._own_cells: dict[int, int] = {}  # seq -> cells its generation steps added

    def free_cells(self) -> int:
        """KV cells nobody holds: what new prompts and generation steps can still use."""
        return self.model.n_ctx - sum(self._prompt_cells.values()) - sum(self._own_cells.values())

    def prefill(self, prompt_ids: list[int], adapter: str, n_rows: int, all_logits: bool) -> torch.Tensor:
        """Decode the prompt in chunks into a new sequence, copied to `n_rows` rows. Logits [1 or L, V]."""
        model = self.model
        if len(self._free) < max(n_rows, 1):
            raise ServingError(f"The llama.cpp backend has room for {model.n_seq_max} sequences at once; "
                               f"this request needs {n_rows} more than are free. Retry shortly.",
                               status=503)
        seq = self._free.pop()
        chunks = []
        try:
            for start in range(0, len(prompt_ids), model._batch_size):
                piece = prompt_ids[start:start + model._batch_size]
                last_chunk = start + len(piece) == len(prompt_ids)
                outputs = [all_logits or (last_chunk and i == len(piece) - 1) for i in range(len(piece))]
                status = model.decode(piece, list(range(start, start + len(piece))), [seq] * len(piece),
                                      outputs, adapter)
                if status != 0:
                    raise ServingError("The server's KV cache is full; retry shortly "
                                       f"(llama.cpp status {status}).", status=503, retry_after=2)
                if any(outputs):
                    chunks.append(model.logits(sum(outputs)))
        except BaseException:
            model.forget(seq)
            self._free.append(seq)
            raise
        if n_rows == 0:
            model.forget(seq)
            self._free.append(seq)
        else:
            prompt = next(self._prompts)
            self._prompt_cells[prompt] = len(prompt_ids)
            for i in range(n_rows):
                copy = seq if i == 0 else self._free.pop()
                if copy != seq:
                    model.copy_sequence(seq, copy)
                self.seqs.append(copy)
                self._prompt_of[copy], self._own_cells[copy] = prompt, 0
        return torch.cat(chunks) if len(chunks) > 1 else chunks[0]

    def step(self, tokens: list[int], positions: list[int], adapters: list[str]) -> torch.Tensor:
        """One token for every row: one decode call per adapter among the rows. Logits [B, V]."""
        model = self.model
        out = torch.empty(len(tokens), model.n_vocab)
        for adapter in dict.fromkeys(adapters):  # first-seen order
            idx = [i for i, a in enumerate(adapters) if a == adapter]
            for start in range(0, len(idx), model._batch_size):
                part = idx[start:start + model._batch_size]
                status = model.decode([tokens[i] for i in part], [positions[i] for i in part],
                                      [self.seqs[i] for i in part], [True] * len(part), adapter)
                if status != 0:
                    raise ServingError("The server's KV cache is full: too many long generations at "
                                       f"once (llama.cpp status {status}). Retry shortly.", status=503,
                                       retry_after=2)
                out[part] = model.logits(len(part))
                for i in part:
                    self._own_cells[self.seqs[i]] += 1
        return out

    def keep(self, rows: list[int]) -> None:
        kept = [self.seqs[i] for i in rows]
        for seq in set(self.seqs) - set(kept):
            self.model.forget(seq)
            self._free.append(seq)
            del self._own_cells[seq]
            prompt = self._prompt_of.pop(seq)
            if prompt not in self._prompt_of.values():  # the last row on that prompt: its cells are free
                del self._prompt_cells[prompt]
        self.seqs = kept


__all__ = ["LlamaCppBatch"]
