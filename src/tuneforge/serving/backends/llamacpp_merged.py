"""Merged copies of LoRA adapters for the llama.cpp bases of one engine (`lora_merge.py` makes the files).

The first request for an adapter starts its merged copy in the background; until it is loaded, and
whenever it cannot be, the base applies the adapter per step, which gives the same answers up to
rounding. Copies (weights and their own KV pool) share one budget, `TUNEFORGE_LLAMACPP_MERGED_MB`
(0: none), across every base. A new copy that does not fit asks the engine thread for room (through
`between_steps`): only there is it known which copies are idle, and idle ones are unloaded least recently
used first. A busy copy is never unloaded.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.serving.backends.lora_merge import NotMergeable

if TYPE_CHECKING:
    from tuneforge.serving.backends.llamacpp import LlamaCppModel

log = logging.getLogger("tuneforge.serving")


class MergedCopies:
    def __init__(self, budget: int, wake: Callable[[], None]):
        self.budget = budget  # bytes
        self._wake = wake  # asks the engine thread for `between_steps` soon
        self._sizes: OrderedDict[str, int] = OrderedDict()  # key -> bytes, loaded or reserved; LRU first
        self._copies: dict[str, LlamaCppModel] = {}
        self._pending: dict[str, Future] = {}
        self._not_mergeable: set[str] = set()
        self._evictions: deque[tuple[str, int, Future]] = deque()  # merges waiting for room
        self._lock = threading.Lock()
        self._stopped = False
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tuneforge-merge")

    def get_or_start(self, base: LlamaCppModel, folder: Path) -> LlamaCppModel | None:
        """The loaded copy of `base` with `folder` merged in, or None after starting to make it."""
        key = base.merged_key(folder)
        with self._lock:
            copy = self._copies.get(key)
            if copy is not None:
                self._sizes.move_to_end(key)
                return copy
            if (self.budget > 0 and not self._stopped and key not in self._not_mergeable
                    and key not in self._pending):
                self._pending[key] = self._executor.submit(self._make, key, base, folder)
        return None

    def copies_of(self, base: LlamaCppModel) -> list[LlamaCppModel]:
        with self._lock:
            return [c for k, c in self._copies.items() if k.partition("@")[2] == base.key]

    def remove(self, key: str) -> LlamaCppModel | None:
        """Forget a copy (its model was deleted); the caller fails its rows and closes it."""
        with self._lock:
            self._sizes.pop(key, None)
            return self._copies.pop(key, None)

    def _make(self, key: str, base: LlamaCppModel, folder: Path) -> None:
        """Make and load the copy when it fits the budget. Never raises: without a copy the base
        applies the adapter per step."""
        try:
            need = base.memory_bytes()
            if not self._make_room(key, need):
                log.info("no room for a merged copy of %s (%d MB): its base applies it", folder, need >> 20)
                return
            copy = base.merged_copy(key, folder)
            with self._lock:
                self._copies[key] = copy
            log.info("serving %s from a merged copy (%d MB)", folder, need >> 20)
        except NotMergeable as exc:
            log.info("serving %s with its adapter applied per step: %s", folder, exc)
            with self._lock:
                self._not_mergeable.add(key)  # not worth asking again
        except Exception:
            log.exception("merging %s failed; its base applies it per step", folder)
        finally:
            with self._lock:
                if key not in self._copies:
                    self._sizes.pop(key, None)  # release the reservation
                self._pending.pop(key, None)

    def _make_room(self, key: str, need: int) -> bool:
        """Reserve `need` bytes for `key` (so two merges cannot both take the last room), once the
        engine thread has unloaded idle copies if it must. False: no room."""
        if self._reserve(key, need):
            return True
        if need > self.budget:
            return False
        answer: Future = Future()
        with self._lock:
            if self._stopped:
                return False
            self._evictions.append((key, need, answer))
        self._wake()
        return answer.result(timeout=60)  # the engine thread answers within one step

    def _reserve(self, key: str, need: int) -> bool:
        with self._lock:
            if sum(self._sizes.values()) + need > self.budget:
                return False
            self._sizes[key] = need
            return True

    def between_steps(self, idle: Callable[[LlamaCppModel], bool]) -> None:
        """Engine thread: answer merges that want room, unloading idle copies least recently used first."""
        while self._evictions:
            key, need, answer = self._evictions.popleft()
            with self._lock:
                loaded = [self._copies[k] for k in self._sizes if k in self._copies]
            victims = [c for c in loaded if idle(c)]
            while not self._reserve(key, need) and victims:
                self._unload(victims.pop(0).key)
            with self._lock:
                answer.set_result(key in self._sizes)

    def _unload(self, key: str) -> None:
        copy = self.remove(key)
        if copy is not None:
            copy.close()
            log.info("unloaded merged copy %s", key)

    def wait(self, timeout: float) -> None:
        with self._lock:
            pending = list(self._pending.values())
        wait_all(pending, timeout=timeout)

    def shutdown(self) -> None:
        """Start no more merges; a merge waiting for room gets none (the engine thread has stopped)."""
        with self._lock:
            self._stopped = True
        while True:
            try:
                self._evictions.popleft()[2].set_result(False)
            except IndexError:
                break
        self._executor.shutdown(wait=False, cancel_futures=True)


__all__ = ["MergedCopies"]
