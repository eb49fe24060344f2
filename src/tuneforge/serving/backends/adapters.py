"""The part every backend shares: the bounded LRU of LoRA adapters on one set of weights, and no-op
defaults for the protocol's optional hooks (a backend with no copies or background work needs nothing).

Adapters are loaded and evicted only by the engine thread (between decode steps): a backend may change
its model while doing it, and no decode call may run meanwhile.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from tuneforge.serving.backends.protocol import Backend

log = logging.getLogger("tuneforge.serving")


def adapter_name(path: Path) -> str:
    return "a" + hashlib.sha1(str(path).encode()).hexdigest()[:12]


class AdapterLRU:
    """Backends implement `_load_adapter` and `drop_adapter`; the LRU bound is `max_adapters`."""

    name: ClassVar[str]
    remote: ClassVar[bool] = False  # decoded by the engine, step by step
    key: str
    max_adapters: int
    adapters: OrderedDict[str, Path]  # name -> folder, least recent first
    closed: bool = False

    def ensure_adapter(self, folder: Path, in_use: set[str]) -> str:
        """Load the adapter in `folder` if needed (evicting the least recently used idle one)."""
        name = adapter_name(folder)
        if name in self.adapters:
            self.adapters.move_to_end(name)
            return name
        while len(self.adapters) >= self.max_adapters:
            victim = next((n for n in self.adapters if n not in in_use), None)
            if victim is None:
                break  # every loaded adapter is serving a row: go over the bound rather than stall
            self.drop_adapter(victim)
        self._load_adapter(folder, name)
        self.adapters[name] = folder
        log.info("loaded adapter %s from %s into %s (%s)", name, folder, self.key, self.name)
        return name

    def prepare_adapter(self, folder: Path) -> None:
        """Slow work for a new adapter that may run off the engine thread before its first use, so
        other requests keep generating meanwhile (default: none)."""

    def _load_adapter(self, folder: Path, name: str) -> None:
        raise NotImplementedError

    def drop_adapter(self, name: str) -> None:
        raise NotImplementedError

    def dedicated(self, folder: Path) -> Backend | None:
        return None  # default: adapters always apply per step

    def drop_dedicated(self, folder: Path) -> Backend | None:
        return None

    def dedicated_copies(self) -> list[Backend]:
        return []

    def between_steps(self, idle: Callable[[Backend], bool]) -> None:
        pass

    def wait_background(self, timeout: float) -> None:
        pass

    def close(self) -> None:
        self.closed = True


__all__ = ["AdapterLRU", "adapter_name"]
