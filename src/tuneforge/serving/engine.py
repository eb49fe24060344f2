"""The inference engine: one background thread owns the models and runs a single decode loop that
batches every active request of a model together (continuous batching), with adapters chosen per row.

The HTTP layer talks to it through asyncio: `prepare()` resolves and (lazily, off the engine thread)
loads a model; `submit()` returns a `RequestHandle` whose `events()` yields `Delta`/`Finished` objects.
A request-level backend (e.g. vLLM) is handed each request whole, as a task of the event loop; the engine
still owns resolving, loading, the queue limit and unloading for it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from tuneforge.models.catalog import UnknownModelError, resolve_base
from tuneforge.models.provision import ProvisionError
from tuneforge.serving.backends.adapters import adapter_name
from tuneforge.serving.backends.loading import BackendLoader
from tuneforge.serving.backends.protocol import Backend
from tuneforge.serving.params import GenerationRequest, ModelNotFound, QueueFull, ServingError
from tuneforge.serving.resolver import ModelTarget, Resolver, default_resolvers
from tuneforge.serving.rows import END, Running, Sequence, prefill
from tuneforge.settings import Settings

log = logging.getLogger("tuneforge.serving")


class RequestHandle:
    """The async side of one request: events arrive from the engine thread through a queue."""

    def __init__(self, engine: InferenceEngine, loop: asyncio.AbstractEventLoop):
        self._engine = engine
        self._loop = loop
        self._queue: asyncio.Queue = asyncio.Queue()
        self.cancelled = False
        self.closed = False
        self.task: asyncio.Task | None = None  # a request-level backend's generation

    def post(self, item) -> None:  # engine thread
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the event loop is gone (server shutting down)
            self.cancelled = True

    async def events(self):
        try:
            while True:
                item = await self._queue.get()
                if item is END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Free the slot now (also on client disconnect); the engine drops the rows at its next step."""
        if not self.closed:
            self.closed = True
            self.cancelled = True
            if self.task is not None:
                self.task.cancel()  # closes its stream, and the remote server stops generating
            self._engine._release()


@dataclass
class Prepared:
    target: ModelTarget
    backend: Backend  # what it runs on: its base, its own weights, or its base's dedicated adapter copy

    @property
    def dedicated(self) -> bool:
        """Whether `backend` is a copy that runs the adapter itself (no adapter to apply per step)."""
        return self.backend.key != self.target.weights_key


@dataclass
class Ticket:
    """A waiting request; one with many rows is admitted in parts (`next`: its first row not admitted)."""

    prepared: Prepared
    request: GenerationRequest
    handle: RequestHandle
    state: object | None = None  # the rows' shared state, once a first part runs
    next: int = 0


PREFILL_TOKENS = 4096  # prompt tokens one admission pass prefills (at least one request)


class InferenceEngine:
    def __init__(self, settings: Settings, *, db=None, resolvers: list[Resolver] | None = None,
                 max_batch_rows: int = 16, max_queued: int = 64, max_adapters: int = 8,
                 device: str | None = None, dtype: torch.dtype | None = None):
        self.settings = settings
        self.resolvers = list(resolvers or []) + default_resolvers(settings, db)
        self.max_batch_rows = max_batch_rows
        self.max_queued = max_queued
        self.max_adapters = max_adapters
        self._models: dict[str, Backend] = {}  # bases and full fine-tunes by weights key
        self._loading: dict[str, Future] = {}
        self._targets: dict[str, ModelTarget] = {}
        self._running: dict[str, Running] = {}
        self._waiting: deque[Ticket] = deque()
        self._commands: deque = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._backends = BackendLoader(settings, device=device, dtype=dtype, max_adapters=max_adapters,
                                       max_rows=max_batch_rows, wake=self._wake.set)
        self._open = 0  # requests admitted and not yet closed (the queue limit counts these)
        self._avg_request_s = 2.0
        self._loader = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tuneforge-load")
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="tuneforge-engine", daemon=True)
        self._thread.start()

    # ---- async API -------------------------------------------------------------------------------
    def resolve(self, model_id: str, project: str = "default") -> ModelTarget:
        for resolver in self.resolvers:
            target = resolver(model_id, project)
            if target is not None:
                if target.kind == "lora":
                    if not (target.path / "adapter_config.json").is_file():
                        log.warning("model %s: no adapter_config.json in %s", model_id, target.path)
                        raise ModelNotFound(model_id, f"The model `{model_id}` has lost its adapter files "
                                                      "on the server; train it again or ask the admin.")
                    target = ModelTarget(target.id, "lora", self._canonical_base(target), target.path)
                elif target.kind == "base":
                    target = ModelTarget(target.id, "base", self._canonical_base(target))
                return target
        raise ModelNotFound(model_id)

    def _canonical_base(self, target: ModelTarget) -> str:
        try:
            spec = resolve_base(target.base, self.settings)
        except UnknownModelError as exc:
            log.warning("model %s: base %s is not available: %s", target.id, target.base, exc)
            raise ModelNotFound(target.id, f"The model `{target.id}` needs a base model that is not "
                                           "available on this server (see the server log).") from exc
        if spec.kind in ("hf_folder", "gguf") and Path(target.base).expanduser().exists():
            return str(Path(target.base).expanduser().resolve())  # given by path: the path is its name
        return spec.name

    async def prepare(self, model_id: str, project: str = "default") -> Prepared:
        """Resolve `model_id` and make sure its weights are loaded (other models keep generating)."""
        target = await asyncio.to_thread(self.resolve, model_id, project)
        self._targets[model_id] = target
        key = target.weights_key
        if key not in self._models:
            with self._lock:
                fut = self._loading.get(key)
                if fut is None:
                    fut = self._loader.submit(self._load, target)
                    self._loading[key] = fut
            await asyncio.wrap_future(fut)
        backend = self._models[key]
        if backend.remote:
            backend.check(target)
            return Prepared(target, backend)
        if target.kind == "lora":
            copy = backend.dedicated(target.path)  # may start making one for later requests
            if copy is not None:
                return Prepared(target, copy)
            if adapter_name(target.path) not in backend.adapters:
                await asyncio.to_thread(backend.prepare_adapter, target.path)
        return Prepared(target, backend)

    def wait_for_loads(self, timeout: float = 120) -> None:
        """Block until the models being loaded now, and their backends' background work (e.g. copies
        of adapters), are ready (benchmarks, tests)."""
        with self._lock:
            pending = list(self._loading.values())
        for fut in pending:
            try:
                fut.result(timeout=timeout)
            except Exception:  # a failed load reports to the request that started it
                pass
        for backend in list(self._models.values()):
            backend.wait_background(timeout)

    def _load(self, target: ModelTarget) -> None:
        key = target.weights_key
        try:
            self._models[key] = self._backends.load(key, target.base,
                                                    target.path if target.kind == "full" else None)
        except (UnknownModelError, OSError, ValueError) as exc:
            log.warning("model %s could not be loaded: %s", target.id, exc)  # may name server paths
            raise ModelNotFound(target.id, f"The model `{target.id}` could not be loaded on this server "
                                           "(see the server log).") from exc
        except ProvisionError as exc:
            raise ServingError(f"The model `{target.id}` is not provisioned: {exc}", status=503) from exc
        finally:
            with self._lock:
                self._loading.pop(key, None)

    def submit(self, prepared: Prepared, request: GenerationRequest) -> RequestHandle:
        if prepared.backend.remote:
            prepared.backend.check_request(request)  # refused before anything is streamed
        with self._lock:
            if self._open >= self.max_queued:
                wait = max(1.0, self._avg_request_s * self._open / self.max_batch_rows)
                raise QueueFull(self.max_queued, round(wait))
            self._open += 1
        handle = RequestHandle(self, asyncio.get_running_loop())
        if prepared.backend.remote:
            handle.task = asyncio.create_task(prepared.backend.generate(prepared.target, request, handle))
            return handle
        self._waiting.append(Ticket(prepared, request, handle))
        self._wake.set()
        return handle

    def unload(self, model_id: str) -> bool:
        """Forget a model (after it is deleted): its adapter, or its own weights, leave memory."""
        target = self._targets.pop(model_id, None)
        if target is None:
            try:
                target = self.resolve(model_id)
            except ServingError:
                return False
        self._commands.append(target)
        self._wake.set()
        return True

    def loaded(self) -> dict[str, list[str]]:
        """Loaded weights (with their backends' dedicated copies) and the adapters on each (for status
        pages and tests)."""
        backends = [c for m in list(self._models.values()) for c in (m, *m.dedicated_copies())]
        return {b.key: [str(p) for p in b.adapters.values()] for b in backends}

    def fleets(self) -> dict:
        """The vLLM fleets of the loaded request-level backends, by weights key (status pages, tests)."""
        return {key: b.fleet for key, b in list(self._models.items()) if b.remote}

    def stats(self) -> dict:
        return {"open_requests": self._open, "waiting": len(self._waiting),
                "running_rows": {k: len(r.rows) for k, r in list(self._running.items())},
                "peak_batch_rows": {k: r.peak_rows for k, r in list(self._running.items())},
                "rows_set_aside": {k: r.set_aside_count for k, r in list(self._running.items())}}

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=10)
        self._loader.shutdown(wait=False, cancel_futures=True)
        self._backends.close()

    def _release(self) -> None:
        with self._lock:
            self._open -= 1

    # ---- engine thread ---------------------------------------------------------------------------
    def _loop(self) -> None:
        torch.set_grad_enabled(False)
        if self.settings.inference_threads:
            # On a CPU shared with other work, fewer threads avoid OpenMP stalls (measured: 30x).
            torch.set_num_threads(self.settings.inference_threads)
        while not self._stop:
            try:
                self._apply_commands()
                self._between_steps()
                busy = self._admit()
            except Exception:  # never let the thread die: every later request would hang
                log.exception("engine bookkeeping failed")
                busy = False
            for key, running in list(self._running.items()):
                if running.rows:
                    try:
                        running.step()
                    except Exception as exc:  # fail this model's requests, keep serving the others
                        log.exception("decode step failed for %s", key)
                        running.fail(ServingError(f"Generation failed: {exc}", status=500))
                    busy = True
            if not busy:
                self._wake.wait(timeout=0.5)
                self._wake.clear()

    def _admit(self) -> bool:
        """Prefill waiting requests into their model's running batch while it has room (rows and KV
        cells). Rows set aside for room come back first; a model's requests join in arrival order.
        Fairness (as vLLM's scheduler): one request decodes at most a fair share of the batch at once and
        is admitted in parts, each part going to the back of the queue; one pass prefills at most
        PREFILL_TOKENS prompt tokens, so a big request cannot starve small ones."""
        admitted = False
        blocked: set[str] = set()  # models whose next request or set-aside row must wait for room
        for key, running in list(self._running.items()):
            admitted |= self._resume_set_aside(running)
            if running.set_aside:
                blocked.add(key)
        budget = PREFILL_TOKENS
        for _ in range(len(self._waiting)):
            ticket = self._waiting.popleft()
            if ticket.handle.cancelled or (ticket.state is not None and ticket.state.failed):
                continue
            backend = self._backend_for(ticket.prepared)
            if backend is None:  # unloaded while waiting
                ticket.handle.post(ModelNotFound(ticket.request.model))
                continue
            running = self._running.setdefault(backend.key, Running(backend))
            take = self._rows_to_take(ticket, running)
            if take == 0 or (admitted and budget < len(ticket.request.prompt_ids)):
                self._waiting.append(ticket)  # its share is decoding, or this pass's prefill is spent
                continue
            if backend.key in blocked or take < 0 or not running.fits(len(ticket.request.prompt_ids), take):
                blocked.add(backend.key)
                self._waiting.append(ticket)
                continue
            budget -= len(ticket.request.prompt_ids)
            self._prefill(ticket, running, backend, take)
            admitted = True
        return admitted

    def _backend_for(self, prepared: Prepared) -> Backend | None:
        if prepared.dedicated and not prepared.backend.closed:
            return prepared.backend
        # Its weights, or the base when its dedicated copy was closed meanwhile: the base then applies
        # the adapter per step, the same model up to rounding. None: unloaded.
        return self._models.get(prepared.target.weights_key)

    def _rows_to_take(self, ticket: Ticket, running: Running) -> int:
        """Rows of this request to admit now: 0 when its fair share is already decoding, -1 when the batch
        has no room."""
        share = max(1, self.max_batch_rows // 2)
        active = running.rows_of(ticket.state) if ticket.state is not None else 0
        want = min(ticket.request.n - ticket.next, share - active)
        if want <= 0:
            return 0
        room = self.max_batch_rows - len(running.rows) if running.rows else want
        return min(want, room) if room > 0 else -1

    def _prefill(self, ticket: Ticket, running: Running, backend: Backend, take: int) -> None:
        prepared, request, handle = ticket.prepared, ticket.request, ticket.handle
        started = time.monotonic()
        try:
            adapter = None
            if prepared.target.kind == "lora" and backend.key == prepared.target.weights_key:
                adapter = backend.ensure_adapter(prepared.target.path, running.adapters_in_use())
            ticket.state = prefill(running, request, handle, adapter, on_done=lambda s=started: self._done(s),
                                   state=ticket.state, first=ticket.next, count=take)
            ticket.next += take
            if ticket.next < request.n:
                self._waiting.append(ticket)  # the rest joins later, after the requests behind it
        except ServingError as exc:
            handle.post(exc)
        except Exception as exc:
            log.exception("prefill failed for %s", request.model)
            handle.post(ServingError(f"Generation failed: {exc}", status=500))

    def _resume_set_aside(self, running: Running) -> bool:
        resumed = False
        while running.set_aside:
            row = running.set_aside[0]
            if row.state.handle.cancelled:
                running.set_aside.pop(0)
                continue
            if len(running.rows) >= self.max_batch_rows or not running.fits(row.pos, 1):
                break
            try:
                running.resume(row)
            except Exception as exc:  # this row's request fails; the others keep generating
                log.exception("resuming a set-aside row failed for %s", running.backend.key)
                running.set_aside.remove(row)
                row.done = True
                row.state.handle.post(exc if isinstance(exc, ServingError)
                                      else ServingError(f"Generation failed: {exc}", status=500))
            resumed = True
        return resumed

    def _done(self, started: float) -> None:
        self._avg_request_s = 0.8 * self._avg_request_s + 0.2 * (time.monotonic() - started)

    def _between_steps(self) -> None:
        """Backends' own housekeeping (e.g. unloading idle copies to make room), then forget batches of
        backends that closed."""
        for backend in list(self._models.values()):
            backend.between_steps(self._idle)
        for key, running in list(self._running.items()):
            if running.backend.closed:
                if running.rows or running.set_aside:  # not expected: a backend closes idle copies only
                    running.fail(ServingError("The model was unloaded; retry the request.", status=503))
                del self._running[key]

    def _idle(self, backend: Backend) -> bool:
        running = self._running.get(backend.key)
        return running is None or not (running.rows or running.set_aside)

    def _close(self, backend: Backend, error: ServingError) -> None:
        running = self._running.pop(backend.key, None)
        if running:
            running.fail(error)
        backend.close()
        log.info("unloaded %s", backend.key)

    def _apply_commands(self) -> None:
        while self._commands:
            target: ModelTarget = self._commands.popleft()
            backend = self._models.get(target.weights_key)
            if backend is None:
                continue
            running = self._running.get(target.weights_key)
            if target.kind == "lora":
                copy = backend.drop_dedicated(target.path)
                if copy is not None:
                    self._close(copy, ModelNotFound(target.id))
                name = next((n for n, p in backend.adapters.items() if p == target.path), None)
                if name is None:
                    continue
                if running:
                    running.fail(ModelNotFound(target.id), only_adapter=name)
                backend.drop_adapter(name)
            elif target.kind == "full":
                del self._models[target.weights_key]
                self._close(backend, ModelNotFound(target.id))


__all__ = ["InferenceEngine", "Prepared", "RequestHandle", "Sequence"]
