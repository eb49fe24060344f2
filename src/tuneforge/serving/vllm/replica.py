"""One vLLM server as tuneforge uses it: its URL and key, the LoRA adapters registered on it (a bounded
LRU), and its load (requests in flight). Registering and unregistering are blocking admin calls (run in a
thread); generation streams through an async client of the request's event loop."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from tuneforge.serving.params import ServingError

log = logging.getLogger("tuneforge.serving")
ADMIN_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# No read timeout: a long generation may pause between tokens while the server batches others.
STREAM_TIMEOUT = httpx.Timeout(None, connect=5.0)


def unavailable(name: str, why: str) -> ServingError:
    return ServingError(f"The vLLM server for `{name}` {why}; retry the request.", status=503,
                        retry_after=5)


class Replica:
    """`url()` gives the server's address now (a managed server's changes when it restarts) or raises a
    503; `generation()` changes when the server restarted, which forgets every registered adapter."""

    def __init__(self, label: str, url: Callable[[], str], api_key: str | None, max_loras: int,
                 generation: Callable[[], int] = lambda: 0):
        self.label = label
        self.url = url
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.max_loras = max_loras
        self._generation = generation
        self._seen_generation = generation()
        self.adapters: dict[str, Path] = {}  # name -> folder
        self.last_used: dict[str, float] = {}  # name -> when a request last took it (the LRU order)
        self.in_use: Counter[str] = Counter()  # adapter name -> requests in flight with it
        self.in_flight = 0
        self.lock = threading.Lock()  # one registration at a time, and the bookkeeping above
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}

    def has(self, name: str) -> bool:
        self._forget_if_restarted()
        return name in self.adapters

    def touch(self, name: str) -> None:
        """A request takes the adapter now (event loop; a plain assignment, so no lock is needed)."""
        self.last_used[name] = time.monotonic()

    def _forget_if_restarted(self) -> None:
        generation = self._generation()
        if generation != self._seen_generation:
            self._seen_generation = generation
            self.adapters.clear()

    # ---- admin (blocking) ------------------------------------------------------------------------
    def register(self, name: str, folder: Path, model: str) -> None:
        """Make adapter `name` servable here, evicting the least recently used idle one past the bound."""
        with self.lock:
            self._forget_if_restarted()
            if name in self.adapters:
                return
            while len(self.adapters) >= self.max_loras:
                idle = [n for n in self.adapters if not self.in_use[n]]
                victim = min(idle, key=lambda n: self.last_used.get(n, 0.0), default=None)
                if victim is None:
                    break  # every registered adapter is serving: vLLM queues past its --max-loras
                self._unregister_locked(victim)
            self._post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(folder)}, model,
                       ok_if=("already been loaded", "already loaded"))
            self.adapters[name] = folder
            log.info("registered adapter %s (%s) on vLLM %s", name, folder, self.label)

    def unregister(self, name: str) -> None:
        with self.lock:
            self._forget_if_restarted()
            if name in self.adapters:
                self._unregister_locked(name)

    def _unregister_locked(self, name: str) -> None:
        self.adapters.pop(name, None)
        try:
            self._post("/v1/unload_lora_adapter", {"lora_name": name}, name,
                       ok_if=("not found", "cannot be found"))
            log.info("unregistered adapter %s from vLLM %s", name, self.label)
        except ServingError as exc:  # a server that is down forgets it anyway
            log.warning("could not unregister adapter %s from vLLM %s: %s", name, self.label, exc)

    def _post(self, path: str, body: dict, model: str, ok_if: tuple[str, ...] = ()) -> None:
        try:
            r = httpx.post(self.url() + path, json=body, headers=self.headers, timeout=ADMIN_TIMEOUT)
        except httpx.HTTPError as exc:
            raise unavailable(model, f"at {self.label} did not answer ({type(exc).__name__})") from exc
        if r.status_code == 200 or any(s in r.text.lower() for s in ok_if):
            return
        log.warning("vLLM %s answered %s to %s: %s", self.label, r.status_code, path, r.text[:500])
        if r.status_code >= 500:
            raise unavailable(model, f"at {self.label} failed ({r.status_code})")
        raise ServingError(f"The vLLM server refused the adapter of `{model}`: {_message(r)}", status=400,
                           param="model", code="unsupported_model")

    # ---- generation (async) ----------------------------------------------------------------------
    def client(self) -> httpx.AsyncClient:
        """This event loop's pooled client (connections are reused between requests)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            for old in [lp for lp in self._clients if lp.is_closed()]:
                del self._clients[old]  # loops of finished test servers
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
            client = httpx.AsyncClient(headers=self.headers, timeout=STREAM_TIMEOUT, limits=limits)
            self._clients[loop] = client
        return client


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300]
    error = data.get("error", data) if isinstance(data, dict) else data
    return str(error.get("message") if isinstance(error, dict) else error)[:500]


__all__ = ["Replica", "unavailable"]
