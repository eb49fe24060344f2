"""Choosing and loading the backend for a model (`TUNEFORGE_INFERENCE_BACKEND`): vLLM on a GPU when it is
installed (or configured), llama.cpp for GGUF Llama bases on a CPU when it is installed, PyTorch for
everything else. One `BackendLoader` per engine; it owns what the backends of one engine share (the
llama.cpp merged copies' memory budget) and the vLLM servers it started."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import torch

from tuneforge.models import base_model_folder
from tuneforge.serving.backends.protocol import Backend
from tuneforge.settings import Settings, get_settings

log = logging.getLogger("tuneforge.serving")


def _given(settings: Settings | None) -> Settings:
    """The settings passed in; callers without any (benchmarks) get the process-wide ones."""
    return settings if settings is not None else get_settings()


def default_device_dtype(settings: Settings | None = None) -> tuple[str, torch.dtype]:
    """bf16 on GPUs; on CPU float32 unless TUNEFORGE_INFERENCE_DTYPE=bfloat16 (faster, less exact)."""
    if torch.cuda.is_available():
        return "cuda", torch.bfloat16
    return "cpu", getattr(torch, _given(settings).inference_dtype)  # validated by the settings


def backend_name(device: str | None = None, dtype: torch.dtype | None = None,
                 settings: Settings | None = None) -> str:
    """`TUNEFORGE_INFERENCE_BACKEND`: auto, llama.cpp, pytorch or vllm. auto: vLLM on a GPU when it is
    installed or TUNEFORGE_VLLM_URLS names servers; on a CPU llama.cpp for GGUF Llama bases (it measured
    faster than vLLM's CPU build there: docs/vllm.md), PyTorch for the rest."""
    settings = _given(settings)
    name = settings.inference_backend  # validated by the settings
    if name == "auto":
        device = device or default_device_dtype(settings)[0]
        if device != "cpu" and (settings.vllm_urls or _vllm_installed(settings)):
            return "vllm"
        from tuneforge.serving.backends import llamacpp

        on_cpu = device == "cpu" and dtype in (None, torch.float32)
        return "llama.cpp" if on_cpu and llamacpp.available() else "pytorch"
    if name == "vllm":
        return "vllm"
    return "llama.cpp" if name.startswith("llama") else "pytorch"


def _vllm_installed(settings: Settings) -> bool:
    from tuneforge.serving.vllm.server import vllm_python

    return vllm_python(settings) is not None


def _llamacpp_gguf(base: str, folder: Path, settings: Settings, forced: bool) -> Path | None:
    """The GGUF that llama.cpp can serve for `base`, or None (then PyTorch serves it)."""
    from tuneforge.models.catalog import resolve_base
    from tuneforge.models.provision import source_path

    spec = resolve_base(base, settings)
    config = json.loads((folder / "config.json").read_text("utf-8"))
    reason = None
    if spec.kind not in ("wheel_gguf", "gguf"):
        reason = "it is not a GGUF model"
    elif config.get("model_type") != "llama":  # our LoRA conversion knows Llama's tensor layout
        reason = f"its architecture is {config.get('model_type')!r}, not llama"
    elif source_path(spec) is None:
        reason = "its GGUF ships in pieces"
    if reason is None:
        return source_path(spec)
    if forced:
        raise ValueError(f"TUNEFORGE_INFERENCE_BACKEND=llama.cpp cannot serve {base}: {reason}.")
    return None


class BackendLoader:
    """Loads a base (by name) or a full fine-tune (by folder) with its tokenizer, off the engine thread.
    `wake`: called when a backend wants its `between_steps` soon (e.g. to make room for a copy)."""

    def __init__(self, settings: Settings, *, device: str | None = None, dtype: torch.dtype | None = None,
                 max_adapters: int = 8, max_rows: int = 16, wake: Callable[[], None] | None = None):
        self.settings = settings
        self.device, self.dtype = device, dtype
        self.max_adapters, self.max_rows = max_adapters, max_rows
        self._wake = wake or (lambda: None)
        self._lock = threading.Lock()
        self._merged = None  # llamacpp_merged.MergedCopies, made with the first llama.cpp base
        self._remote: list[Backend] = []  # vLLM backends: their managed servers stop with the engine

    def load(self, key: str, base: str, full_path: Path | None = None) -> Backend:
        settings = self.settings
        base_folder = base_model_folder(base, settings)
        if backend_name(self.device, self.dtype, settings) == "vllm":
            return self._load_vllm(key, base, base_folder, full_path)
        if full_path is None and backend_name(self.device, self.dtype, settings) == "llama.cpp":
            forced = settings.inference_backend != "auto"
            gguf = _llamacpp_gguf(base, base_folder, settings, forced)
            if gguf is not None:
                return self._load_llamacpp(key, gguf, base_folder)
        return self._load_torch(key, full_path if full_path is not None else base_folder, base_folder)

    def _load_llamacpp(self, key: str, gguf: Path, base_folder: Path) -> Backend:
        from tuneforge.serving.backends.llamacpp import LlamaCppModel, serving_gguf
        from tuneforge.serving.backends.llamacpp_merged import MergedCopies

        settings = self.settings
        with self._lock:
            if self._merged is None:  # one budget for every llama.cpp base of this engine
                self._merged = MergedCopies(int(settings.llamacpp_merged_mb * 2**20), self._wake)
        threads = settings.inference_threads
        served = serving_gguf(gguf, base_folder, weights=settings.llamacpp_weights, threads=threads,
                              llama_log=settings.llamacpp_log)
        return LlamaCppModel(key, served, base_folder, settings.cache_dir / "lora-gguf", self.max_adapters,
                             self.max_rows, settings.llamacpp_cells, source=gguf, threads=threads,
                             llama_log=settings.llamacpp_log, merged=self._merged)

    def _load_vllm(self, key: str, base: str, base_folder: Path, full_path: Path | None) -> Backend:
        from transformers import AutoTokenizer

        from tuneforge.serving.backends.vllm import VllmBackend
        from tuneforge.serving.vllm.fleets import open_fleet

        folder = full_path if full_path is not None else base_folder
        tok_folder = folder if (folder / "tokenizer_config.json").is_file() else base_folder
        tokenizer = AutoTokenizer.from_pretrained(tok_folder)
        backend = VllmBackend(key, tokenizer, open_fleet(base, base_folder, full_path, self.settings))
        with self._lock:
            self._remote.append(backend)
        return backend

    def _load_torch(self, key: str, folder: Path, base_folder: Path) -> Backend:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from tuneforge.serving.backends.pytorch import TorchModel

        dev, dt = default_device_dtype(self.settings)
        device, dtype = self.device or dev, self.dtype or dt
        tok_folder = folder if (folder / "tokenizer_config.json").is_file() else base_folder
        tokenizer = AutoTokenizer.from_pretrained(tok_folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
        log.info("loaded %s from %s (%s, %s)", key, folder, device, dtype)
        return TorchModel(key, model, tokenizer, self.max_adapters)

    def close(self) -> None:
        """Stop background work (the backends themselves are freed with the engine)."""
        if self._merged is not None:
            self._merged.shutdown()
        with self._lock:
            remote, self._remote = self._remote, []
        for backend in remote:
            backend.close()


__all__ = ["BackendLoader", "backend_name", "default_device_dtype"]
