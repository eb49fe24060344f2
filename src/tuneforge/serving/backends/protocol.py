"""What the engine asks of a backend: a `Backend` (one set of weights, with its adapters) and the `Batch`
of rows it decodes. The engine schedules; a backend only turns tokens into logits and keeps its own tricks
(a fixed KV pool, merged copies of adapters) behind these methods.

Threads: everything runs on the engine thread except loading, `prepare_adapter` and `dedicated` (the
request's thread) and `wait_background` (tests, benchmarks).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch

BASE_ADAPTER = "__base__"  # the adapter name of a row that runs the bare weights


@runtime_checkable
class Batch(Protocol):
    """The KV state of one backend's running rows, in row order. Logits come back as float32 CPU tensors."""

    def prefill(self, prompt_ids: list[int], adapter: str, n_rows: int, all_logits: bool) -> torch.Tensor:
        """Run the prompt once and add `n_rows` rows that continue it. Logits [1 or L, V]."""
        ...

    def step(self, tokens: list[int], positions: list[int], adapters: list[str]) -> torch.Tensor:
        """One token for every row (in row order). Logits [B, V], a tensor the sampler may edit."""
        ...

    def keep(self, rows: list[int]) -> None:
        """Keep only `rows`, in this order."""
        ...

    def free_cells(self) -> int | None:
        """KV cells left in a fixed pool, or None when the cache grows with the rows (no rationing)."""
        ...


@runtime_checkable
class Backend(Protocol):
    """One loaded set of weights (a base, a full fine-tune, or a backend's own copy of an adapter)."""

    name: ClassVar[str]  # e.g. "llama.cpp", "pytorch", "vllm"
    # True: a request-level backend (vLLM): the engine asks it `check(target)` in prepare and
    # `check_request(request)` in submit (both raise ServingError), then hands the request to
    # `generate(target, request, handle)`, a coroutine that posts the events; no token-level method runs.
    remote: ClassVar[bool]
    key: str  # the engine's name for these weights, e.g. "base:<name>"
    tokenizer: Any
    context_length: int
    stop_ids: set[int]
    adapters: OrderedDict[str, Path]  # adapter name -> folder, least recently used first
    closed: bool

    def new_batch(self) -> Batch: ...

    def prepare_adapter(self, folder: Path) -> None:
        """Slow work for a new adapter (e.g. a format conversion), off the engine thread."""
        ...

    def ensure_adapter(self, folder: Path, in_use: set[str]) -> str:
        """Load the adapter (evicting an idle one past the bound); returns its name for `Batch` calls."""
        ...

    def drop_adapter(self, name: str) -> None: ...

    def dedicated(self, folder: Path) -> Backend | None:
        """A ready copy of these weights that runs the adapter in `folder` at no cost per step, or None;
        may start making one in the background (then a later call returns it)."""
        ...

    def drop_dedicated(self, folder: Path) -> Backend | None:
        """Forget the copy for `folder` (its model was deleted) and return it, still open, so the engine
        can fail its rows and close it."""
        ...

    def dedicated_copies(self) -> list[Backend]:
        """The copies made from these weights that are loaded now (status pages, tests)."""
        ...

    def between_steps(self, idle: Callable[[Backend], bool]) -> None:
        """Engine-thread housekeeping between decode steps; `idle(b)`: `b` has no rows now."""
        ...

    def wait_background(self, timeout: float) -> None:
        """Block until background work started so far (e.g. making copies) is done (tests, benchmarks)."""
        ...

    def close(self) -> None: ...


__all__ = ["BASE_ADAPTER", "Backend", "Batch"]
