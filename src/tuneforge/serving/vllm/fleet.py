"""The vLLM replicas that serve one base model (or one full fine-tune), and which one takes a request:
the least loaded that has the request's adapter registered; when none has it, or those that have it are
much busier than another, the adapter is registered on the least loaded replica too."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path

from tuneforge.serving.backends.adapters import adapter_name
from tuneforge.serving.params import ServingError
from tuneforge.serving.vllm.replica import Replica
from tuneforge.serving.vllm.server import ManagedServer

SPREAD = 4  # requests in flight by which a replica with the adapter may be busier before another joins


class Fleet:
    def __init__(self, name: str, served_name: str, replicas: list[Replica], max_lora_rank: int,
                 context_length: int, managed: ManagedServer | None = None, base_adapter: Path | None = None):
        self.name = name  # the base (or full fine-tune) as tuneforge names it
        self.served_name = served_name  # the model name vLLM answers to
        self.replicas = replicas
        self.max_lora_rank = max_lora_rank
        self.context_length = context_length
        self.managed = managed
        # Requests for the bare base ride this all-zero adapter (serving/vllm/zero_adapter.py), if any.
        self.base_adapter = (adapter_name(base_adapter), base_adapter) if base_adapter else None

    def choose(self, adapter: str | None) -> tuple[Replica, bool]:
        """The replica for a request, and whether `adapter` must be registered on it first."""
        if not self.replicas:
            raise ServingError(f"No vLLM server serves `{self.name}`.", status=503)
        least = min(self.replicas, key=lambda r: r.in_flight)
        if adapter is None:
            return least, False
        holders = [r for r in self.replicas if r.has(adapter)]
        if holders:
            best = min(holders, key=lambda r: r.in_flight)
            if best.in_flight <= least.in_flight + SPREAD:
                return best, False
        return least, True

    @asynccontextmanager
    async def replica_for(self, adapter: str | None, folder: Path | None, model: str):
        """A replica with the adapter registered, counted as busy while the block runs."""
        replica, register = self.choose(adapter)
        replica.in_flight += 1
        if adapter:
            replica.in_use[adapter] += 1
            replica.touch(adapter)
        try:
            if register:
                await asyncio.to_thread(replica.register, adapter, folder, model)
            yield replica
        finally:
            replica.in_flight -= 1
            if adapter:
                replica.in_use[adapter] -= 1

    def adapters(self) -> dict[str, Path]:
        return {n: p for r in self.replicas for n, p in r.adapters.items()}

    def unregister(self, adapter: str) -> None:
        """Blocking: every replica forgets the adapter (its model was deleted)."""
        for replica in self.replicas:
            replica.unregister(adapter)

    def close(self) -> None:
        if self.managed is not None:
            self.managed.stop()


__all__ = ["Fleet"]
