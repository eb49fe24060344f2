"""The rows of one model's running batch: prefill a request into it, decode one token for every row,
and turn sampled tokens into `Delta`/`Finished` events (engine thread only)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from tuneforge.serving.backends.protocol import BASE_ADAPTER, Backend
from tuneforge.serving.detok import SequenceText
from tuneforge.serving.params import Finished, GenerationRequest, PromptLogprobs, ServingError, TokenInfo
from tuneforge.serving.sampler import RowSampler, prompt_token_infos, sample_batch

log = logging.getLogger("tuneforge.serving")
END = object()  # posted after the last sequence of a request finishes
GROWTH_CELLS = 32  # KV cells each admitted row should find free, so it is not set aside at once


@dataclass
class _RequestState:
    handle: object  # engine.RequestHandle
    remaining: int
    on_done: Callable[[], None]
    failed: bool = False


class Sequence:
    def __init__(self, state: _RequestState, request: GenerationRequest, index: int, backend: Backend,
                 adapter: str | None):
        self.state = state
        self.index = index
        self.adapter = adapter
        p = request.params
        self.ignore_eos = p.ignore_eos
        self.sampler = RowSampler(p, backend.tokenizer, request.prompt_ids, seed_offset=index)
        self.prompt_ids = request.prompt_ids
        self.tokens: list[int] = []  # generated so far; the last one is not in the KV cache yet
        self.text = SequenceText(index, backend.tokenizer, p.stop)
        room = backend.context_length - len(request.prompt_ids)
        self.max_new = room if p.max_tokens is None else min(p.max_tokens, room)
        self.pos = len(request.prompt_ids)
        self.last = -1
        self.generated = 0
        self.cumulative = 0.0
        self.done = False


class Running:
    def __init__(self, backend: Backend):
        self.backend = backend
        self.rows: list[Sequence] = []
        self.batch = backend.new_batch()  # the backend's KV state of these rows, in row order
        self.set_aside: list[Sequence] = []  # rows taken out to free KV cells, oldest first
        self.peak_rows = 0  # the most rows decoded together (observability and tests)
        self.set_aside_count = 0  # how often a row had to be set aside (observability and tests)

    def rows_of(self, state) -> int:
        """Rows of one request in this batch (decoding or set aside)."""
        return sum(1 for r in self.rows + self.set_aside if r.state is state)

    def adapters_in_use(self) -> set[str]:
        return {r.adapter for r in self.rows + self.set_aside if r.adapter}

    def fits(self, cells: int, n_rows: int) -> bool:
        """Whether rows holding `cells` KV cells can join now, leaving them room to grow. An empty batch
        takes anything: one row always fits a pool that is at least its context long."""
        free = self.batch.free_cells()
        return free is None or not self.rows or free >= cells + n_rows * GROWTH_CELLS

    def step(self) -> None:
        self._drop(lambda r: r.state.handle.cancelled)
        self._make_room()
        if not self.rows:
            return
        self.peak_rows = max(self.peak_rows, len(self.rows))
        logits = self.batch.step([r.last for r in self.rows], [r.pos for r in self.rows],
                                 [r.adapter or BASE_ADAPTER for r in self.rows])
        infos = sample_batch([r.sampler for r in self.rows], logits)
        for row, info in zip(self.rows, infos, strict=True):
            row.pos += 1
            self.accept(row, info)
        self._drop(lambda r: r.done or r.state.failed)

    def _make_room(self) -> None:
        """A fixed KV pool (llama.cpp) that cannot take one more token per row: set the youngest rows
        aside, keeping their tokens; `resume` recomputes their cache later and they continue unchanged.
        This is vLLM's preemption by recomputation: long generations slow down instead of failing."""
        free = self.batch.free_cells()
        while free is not None and len(self.rows) > 1 and free < len(self.rows):
            self.set_aside.insert(0, self.rows.pop())
            self.batch.keep(list(range(len(self.rows))))
            self.set_aside_count += 1
            free = self.batch.free_cells()

    def resume(self, row: Sequence) -> None:
        """Bring a set-aside row back: prefill its prompt and the tokens it generated (not the last one,
        which the next step feeds) into a fresh sequence."""
        self.batch.prefill(row.prompt_ids + row.tokens[:-1], row.adapter or BASE_ADAPTER, 1, all_logits=False)
        self.set_aside.remove(row)
        self.rows.append(row)

    def accept(self, row: Sequence, info: TokenInfo | Exception) -> None:
        if isinstance(info, Exception):
            self.fail_request(row, info)
            return
        if row.state.failed:
            return
        row.last = info.token_id
        row.tokens.append(info.token_id)
        row.generated += 1
        row.cumulative += info.logprob
        special = info.token_id in self.backend.stop_ids and not row.ignore_eos
        delta, hit = row.text.add(info, special)
        if delta is not None:
            row.state.handle.post(delta)
        if hit or special:
            self.finish(row, "stop", flush=not hit)
        elif row.generated >= row.max_new:
            self.finish(row, "length")

    def finish(self, row: Sequence, reason: str, flush: bool = True) -> None:
        handle = row.state.handle
        if flush and (delta := row.text.flush()) is not None:
            handle.post(delta)
        handle.post(Finished(row.index, reason, row.generated, row.cumulative))
        row.done = True
        row.state.remaining -= 1
        if row.state.remaining == 0:
            handle.post(END)
            row.state.on_done()

    def fail_request(self, row: Sequence, exc: Exception) -> None:
        """End only this row's request (its other rows too): e.g. its JSON constraint broke."""
        if not row.state.failed:
            row.state.failed = True
            log.warning("a row of %s failed: %s", self.backend.key, exc)
            row.state.handle.post(exc if isinstance(exc, ServingError)
                                  else ServingError(f"Generation failed: {exc}", status=500))
        row.done = True

    def fail(self, error: Exception, only_adapter: str | None = None) -> None:
        """Abort rows (all, or those of one adapter) with `error`, e.g. when their model is deleted."""
        for row in self.rows + self.set_aside:
            if only_adapter is None or row.adapter == only_adapter:
                row.done = True
                row.state.handle.post(error)
        self._drop(lambda r: r.done)

    def _drop(self, gone: Callable[[Sequence], bool]) -> None:
        self.set_aside = [r for r in self.set_aside if not gone(r)]
        keep = [i for i, r in enumerate(self.rows) if not gone(r)]
        if len(keep) != len(self.rows):
            self.rows = [self.rows[i] for i in keep]
            self.batch.keep(keep)


def prefill(running: Running, request: GenerationRequest, handle, adapter: str | None,
            on_done: Callable[[], None], state: _RequestState | None = None, first: int = 0,
            count: int | None = None) -> _RequestState:
    """Run the prompt once for `count` of the request's `n` rows (from row `first`; all by default) and
    sample each row's first token. A request admitted in parts passes the `state` the first part made."""
    backend = running.backend
    count = request.n - first if count is None else count
    state = state or _RequestState(handle, request.n, on_done)
    rows = [Sequence(state, request, first + i, backend, adapter) for i in range(count)]
    generate = rows[0].max_new > 0  # not e.g. echo with max_tokens=0: score the prompt, generate nothing
    want_prompt_lp = request.prompt_logprobs and first == 0
    logits = running.batch.prefill(request.prompt_ids, adapter or BASE_ADAPTER,
                                   count if generate else 0, all_logits=want_prompt_lp)
    if want_prompt_lp:
        k = request.params.logprobs or 0
        handle.post(PromptLogprobs(prompt_token_infos(backend.tokenizer, request.prompt_ids, logits, k)))
    if not generate:
        for row in rows:
            running.finish(row, "length")
        return state
    running.rows.extend(rows)
    infos = sample_batch([r.sampler for r in rows], logits[-1].unsqueeze(0).repeat(count, 1))
    for row, info in zip(rows, infos, strict=True):
        running.accept(row, info)
    running._drop(lambda r: r.done or r.state.failed)
    return state


__all__ = ["END", "PromptLogprobs", "Running", "Sequence", "prefill"]
