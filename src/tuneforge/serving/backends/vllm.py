"""The vLLM backend: a request-level backend. The engine does no decoding for it: each request streams
from a vLLM server of the model's fleet (serving/vllm/), and its chunks become the engine's `Delta` and
`Finished` events, so the OpenAI layer (ids, usage, error shape, tool and stop handling) stays tuneforge's.

Prompts go as token ids (tuneforge renders the chat template, so both backends see the same prompt), and
vLLM returns the generated ids (`return_token_ids`) for usage counts and logprobs."""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, ClassVar

import httpx

from tuneforge.serving.backends.adapters import adapter_name
from tuneforge.serving.params import Delta, Finished, GenerationRequest, ServingError, TokenInfo
from tuneforge.serving.resolver import ModelTarget
from tuneforge.serving.rows import END
from tuneforge.serving.vllm.fleet import Fleet
from tuneforge.serving.vllm.fleets import adapter_rank
from tuneforge.serving.vllm.replica import Replica, _message, unavailable

log = logging.getLogger("tuneforge.serving")


class _AdapterGone(Exception):
    """vLLM no longer knows the adapter (the server restarted, or another gateway unregistered it)."""


class VllmBackend:
    name: ClassVar[str] = "vllm"
    remote: ClassVar[bool] = True  # the engine hands requests over whole (no decode steps)

    def __init__(self, key: str, tokenizer: Any, fleet: Fleet):
        self.key = key
        self.tokenizer = tokenizer
        self.fleet = fleet
        self.context_length = fleet.context_length
        self.stop_ids: set[int] = set()
        self.closed = False
        self._ranks: dict[Path, int] = {}

    @property
    def adapters(self) -> OrderedDict[str, Path]:
        return OrderedDict(self.fleet.adapters())

    def check(self, target: ModelTarget) -> None:
        """A LoRA above the fleet's rank is refused clearly (vLLM would fail the request itself)."""
        if target.kind != "lora":
            return
        rank = self._ranks.get(target.path)
        if rank is None:
            rank = self._ranks[target.path] = adapter_rank(target.path)
        if rank > self.fleet.max_lora_rank:
            raise ServingError(
                f"The model `{target.id}` is a LoRA of rank {rank}, above the {self.fleet.max_lora_rank} "
                f"that the vLLM servers for `{self.fleet.name}` take. Raise TUNEFORGE_VLLM_MAX_LORA_RANK "
                "(and --max-lora-rank on external servers) to at least that, then restart `tuneforge serve`.",
                status=400, param="model", code="unsupported_model")

    def check_request(self, request: GenerationRequest) -> None:
        """What this backend refuses, before the response starts."""
        if request.prompt_logprobs:
            raise ServingError("'echo' with 'logprobs' (scoring the prompt) is not served by the vLLM "
                               "backend: drop one of them, or serve this model with "
                               "TUNEFORGE_INFERENCE_BACKEND=llama.cpp or pytorch.", status=400, param="echo")

    async def generate(self, target: ModelTarget, request: GenerationRequest, handle) -> None:
        """Stream one request from the fleet into `handle` (errors are posted, never raised)."""
        adapter, folder = self.fleet.base_adapter or (None, None)
        if target.kind == "lora":
            adapter, folder = adapter_name(target.path), target.path
        try:
            for attempt in range(2):
                try:
                    async with self.fleet.replica_for(adapter, folder, target.id) as replica:
                        await self._stream(replica, adapter, target, request, handle)
                    break
                except _AdapterGone:
                    with replica.lock:
                        replica.adapters.pop(adapter, None)  # registered again on the next attempt
                    if attempt:
                        raise unavailable(target.id, "lost the adapter twice") from None
            handle.post(END)
        except ServingError as exc:
            handle.post(exc)
        except Exception as exc:  # noqa: BLE001 (a bug here must fail one request, not hang it)
            log.exception("vLLM request for %s failed", target.id)
            handle.post(ServingError(f"Generation failed: {exc}", status=500))

    def _body(self, adapter: str | None, request: GenerationRequest) -> dict:
        p = request.params
        room = self.context_length - len(request.prompt_ids)
        body: dict[str, Any] = {
            "model": adapter or self.fleet.served_name, "prompt": request.prompt_ids, "stream": True,
            "n": _sent_n(request),
            "max_tokens": min(p.max_tokens, room) if p.max_tokens is not None else room,
            "temperature": p.temperature, "top_p": p.top_p, "presence_penalty": p.presence_penalty,
            "frequency_penalty": p.frequency_penalty, "seed": p.seed, "ignore_eos": p.ignore_eos,
            "return_token_ids": True}
        if p.stop:
            body["stop"] = p.stop
        if p.logit_bias:
            body["logit_bias"] = {str(k): v for k, v in p.logit_bias.items()}
        # best_of ranks candidates by their log-probability: n > 1 always asks for the sampled token's.
        logprobs = p.logprobs if p.logprobs is not None else (0 if request.n > 1 else None)
        if logprobs is not None:
            body["logprobs"] = logprobs
            body["return_tokens_as_token_ids"] = True
        if p.json_mode:
            body["structured_outputs"] = {"json": p.json_schema or {"type": "object"}}
        return body

    async def _stream(self, replica: Replica, adapter: str | None, target: ModelTarget,
                      request: GenerationRequest, handle) -> None:
        url = replica.url() + "/v1/completions"
        counts = [0] * request.n
        logprob_sums = [0.0] * request.n
        try:
            async with replica.client().stream("POST", url, json=self._body(adapter, request)) as response:
                if response.status_code != 200:
                    await response.aread()
                    self._refused(response, adapter, target)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    chunk = json.loads(data)
                    if "error" in chunk:
                        raise ServingError(f"vLLM: {chunk['error'].get('message')}", status=503,
                                           retry_after=5)
                    for choice in chunk.get("choices", ()):
                        self._choice(choice, request, counts, logprob_sums, handle, target)
        except httpx.HTTPError as exc:
            raise unavailable(target.id, f"stopped answering ({type(exc).__name__})") from exc
        raise unavailable(target.id, "ended the stream early")

    def _refused(self, response: httpx.Response, adapter: str | None, target: ModelTarget) -> None:
        message = _message(response)
        if response.status_code == 404 and adapter:
            raise _AdapterGone()
        if response.status_code >= 500:
            log.warning("vLLM answered %s for %s: %s", response.status_code, target.id, message)
            raise unavailable(target.id, f"failed ({response.status_code})")
        raise ServingError(message, status=400 if response.status_code != 429 else 429,
                           retry_after=5 if response.status_code == 429 else None)

    def _choice(self, choice: dict, request: GenerationRequest, counts: list[int], sums: list[float],
                handle, target: ModelTarget) -> None:
        if _sent_n(request) < request.n:  # greedy: the one sequence is every sequence asked for
            for i in range(request.n):
                self._choice({**choice, "index": i}, _one(request), counts, sums, handle, target)
            return
        i = choice["index"]
        ids = choice.get("token_ids") or []
        lp = choice.get("logprobs")
        counts[i] += len(ids)
        if lp:
            sums[i] += sum(v for v in lp.get("token_logprobs") or () if v is not None)
        tokens = self._tokens(ids, lp, request.params.logprobs) if request.params.logprobs is not None else []
        text = choice.get("text") or ""
        if text or tokens:
            handle.post(Delta(i, text, tokens))
        reason = choice.get("finish_reason")
        if reason == "abort":
            raise unavailable(target.id, "dropped the request")
        if reason:
            handle.post(Finished(i, "length" if reason == "length" else "stop", counts[i], sums[i]))

    def _tokens(self, ids: list[int], lp: dict | None, k: int) -> list[TokenInfo]:
        lp = lp or {}
        values = lp.get("token_logprobs") or [0.0] * len(ids)
        tops = lp.get("top_logprobs") or [None] * len(ids)
        out = []
        for token_id, value, top in zip(ids, values, tops, strict=False):
            ranked = sorted(((_token_id(t), v) for t, v in (top or {}).items()), key=lambda a: -a[1])
            alternatives = ranked[:k]
            out.append(TokenInfo(token_id, self._text(token_id), float(value or 0.0),
                                 [(a, self._text(a), v) for a, v in alternatives]))
        return out

    def _text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])

    # ---- the rest of the backend protocol: nothing runs on the engine thread ---------------------
    def drop_adapter(self, name: str) -> None:
        """Unregister a deleted model's adapter everywhere, off the engine thread (HTTP calls)."""
        threading.Thread(target=self.fleet.unregister, args=(name,), daemon=True,
                         name="tuneforge-vllm-unregister").start()

    def prepare_adapter(self, folder: Path) -> None:
        pass

    def dedicated(self, folder: Path):
        return None

    def drop_dedicated(self, folder: Path):
        return None

    def dedicated_copies(self) -> list:
        return []

    def between_steps(self, idle) -> None:
        pass

    def wait_background(self, timeout: float) -> None:
        pass

    def close(self) -> None:
        self.closed = True
        self.fleet.close()


def _sent_n(request: GenerationRequest) -> int:
    """vLLM refuses n > 1 with greedy sampling; its n sequences would be the same one anyway."""
    return 1 if request.params.temperature == 0 else request.n


def _one(request: GenerationRequest) -> GenerationRequest:
    return GenerationRequest(request.model, request.prompt_ids, request.params, n=1)


def _token_id(token: str) -> int:
    return int(token.split(":", 1)[1]) if token.startswith("token_id:") else -1


__all__ = ["VllmBackend"]
