"""Opening the fleet for a base model or a full fine-tune: the external servers that
`TUNEFORGE_VLLM_URLS` lists for it, or else a managed server (`TUNEFORGE_VLLM_MANAGED`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx

from tuneforge.serving.params import ServingError
from tuneforge.serving.vllm.fleet import Fleet
from tuneforge.serving.vllm.replica import ADMIN_TIMEOUT, Replica
from tuneforge.serving.vllm.server import ManagedServer, ServerSpec, extra_args, lora_rank_limit, vllm_python
from tuneforge.serving.vllm.zero_adapter import zero_adapter
from tuneforge.settings import Settings

log = logging.getLogger("tuneforge.serving")


def adapter_rank(folder: Path) -> int:
    """The LoRA rank `r` of a PEFT adapter folder (0 when it cannot be read)."""
    try:
        config = json.loads((folder / "adapter_config.json").read_text("utf-8"))
        ranks = [config.get("r") or 0, *(config.get("rank_pattern") or {}).values()]
        return max(int(r) for r in ranks)
    except (OSError, ValueError, TypeError):
        return 0


def highest_rank(settings: Settings) -> int:
    """The highest rank of the adapters trained here so far (jobs keep their models and checkpoints in
    their folders): a managed server starts able to serve them all."""
    configs = [p for d in (settings.jobs_dir, settings.models_dir) for p in d.glob("**/adapter_config.json")]
    return max((adapter_rank(p.parent) for p in configs), default=0)


def external_urls(settings: Settings, base: str) -> list[str]:
    """The replicas `TUNEFORGE_VLLM_URLS` lists for `base` (entries are validated by the settings)."""
    return [entry.split("=", 1)[1].rstrip("/") for entry in settings.vllm_urls
            if entry.split("=", 1)[0].strip() == base]


def _context_length(folder: Path, wanted: int) -> int:
    try:
        config = json.loads((folder / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return wanted
    return min(wanted, int(config.get("max_position_embeddings") or wanted))


def _base_adapter(folder: Path, settings: Settings) -> Path | None:
    return zero_adapter(folder, settings.cache_dir) if settings.vllm_base_adapter else None


def _external(base: str, folder: Path, urls: list[str], settings: Settings) -> Fleet:
    """Ask the first server what it serves: its base's name (adapters name it as their parent) and its
    context length."""
    key = settings.vllm_api_key or None
    replicas = [Replica(url, lambda u=url: u, key, settings.vllm_max_loras) for url in urls]
    headers = replicas[0].headers
    try:
        r = httpx.get(urls[0] + "/v1/models", headers=headers, timeout=ADMIN_TIMEOUT)
        r.raise_for_status()
        cards = r.json()["data"]
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        log.warning("vLLM server %s for %s: %s", urls[0], base, exc)
        raise ServingError(f"The vLLM server for `{base}` does not answer; start it, or fix "
                           "TUNEFORGE_VLLM_URLS.", status=503, retry_after=10) from exc
    card = next((c for c in cards if not c.get("parent")), cards[0])
    return Fleet(base, card["id"], replicas, settings.vllm_max_lora_rank,
                 int(card.get("max_model_len") or settings.vllm_max_model_len),
                 base_adapter=_base_adapter(folder, settings))


def _managed(name: str, folder: Path, lora: bool, settings: Settings) -> Fleet:
    python = vllm_python(settings)
    if python is None:
        raise ServingError("TUNEFORGE_INFERENCE_BACKEND=vllm, but vLLM is not installed here: run "
                           "`make vllm` (or set TUNEFORGE_VLLM_PYTHON to a Python that has vLLM).",
                           status=503)
    rank = lora_rank_limit(max(settings.vllm_max_lora_rank, highest_rank(settings)))
    spec = ServerSpec(name, folder, _context_length(folder, settings.vllm_max_model_len), lora=lora,
                      max_lora_rank=rank, max_loras=settings.vllm_max_loras, extra_args=extra_args(settings))
    server = ManagedServer(spec, python, settings)

    def url() -> str:
        return server.wait_ready(0)

    replica = Replica(f"managed:{name}", url, server.api_key, settings.vllm_max_loras,
                      generation=lambda: server.generation)
    try:
        server.wait_ready(settings.vllm_start_timeout)
    except ServingError:
        server.stop()
        raise
    return Fleet(name, name, [replica], rank, spec.max_model_len, managed=server,
                 base_adapter=_base_adapter(folder, settings) if lora else None)


def open_fleet(base: str, base_folder: Path, full_path: Path | None, settings: Settings) -> Fleet:
    """Blocking (a managed server takes a minute to start): the fleet for a base, or a full fine-tune."""
    if full_path is None:
        urls = external_urls(settings, base)
        if urls:
            return _external(base, base_folder, urls, settings)
    if not settings.vllm_managed:
        what = "a full fine-tune" if full_path is not None else f"the base `{base}`"
        raise ServingError(f"No vLLM server is configured for {what}: list one in TUNEFORGE_VLLM_URLS "
                           "(base=url), or let tuneforge start one (TUNEFORGE_VLLM_MANAGED=1).", status=503)
    if full_path is not None:  # its own server: vLLM serves one set of full weights per server
        # the job folder names it: its model folder is `final/` or a checkpoint's, alike across jobs
        return _managed(f"full-{full_path.parent.name}-{full_path.name}", full_path, False, settings)
    return _managed(base, base_folder, True, settings)


__all__ = ["adapter_rank", "highest_rank", "open_fleet"]
