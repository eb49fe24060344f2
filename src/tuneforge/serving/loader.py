"""One loaded set of weights (a base, or a full fine-tune) with its tokenizer and a bounded LRU of LoRA
adapters applied per request through PEFT's multi-adapter support.

Adapters are loaded and evicted only by the engine thread (between decode steps), because PEFT mutates
the module tree and no forward pass may run meanwhile.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from pathlib import Path

import torch

from tuneforge.models import base_model_folder
from tuneforge.serving.sampler import stop_token_ids
from tuneforge.settings import Settings, get_settings

log = logging.getLogger("tuneforge.serving")
BASE_ADAPTER = "__base__"  # PEFT's name for "no adapter on this row" in a mixed batch


def _given(settings: Settings | None) -> Settings:
    """The settings passed in; callers without any (benchmarks) get the process-wide ones."""
    return settings if settings is not None else get_settings()


def default_device_dtype(settings: Settings | None = None) -> tuple[str, torch.dtype]:
    """bf16 on GPUs; on CPU float32 unless TUNEFORGE_INFERENCE_DTYPE=bfloat16 (faster, less exact)."""
    if torch.cuda.is_available():
        return "cuda", torch.bfloat16
    return "cpu", getattr(torch, _given(settings).inference_dtype)  # validated by the settings


def adapter_name(path: Path) -> str:
    return "a" + hashlib.sha1(str(path).encode()).hexdigest()[:12]


class AdapterLRU:
    """The bounded LRU of LoRA adapters loaded onto one base; backends implement `_load_adapter` and
    `drop_adapter`."""

    max_adapters: int
    adapters: OrderedDict[str, Path]  # name -> folder, least recent first

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
        log.info("loaded adapter %s from %s into %s (%s)", name, folder, self.key, self.backend)
        return name

    def prepare_adapter(self, folder: Path) -> None:
        """Slow work for a new adapter that may run off the engine thread before its first use, so
        other requests keep generating meanwhile (default: none)."""

    def _load_adapter(self, folder: Path, name: str) -> None:
        raise NotImplementedError

    def drop_adapter(self, name: str) -> None:
        raise NotImplementedError


class LoadedModel(AdapterLRU):
    """A transformers model (a base or a full fine-tune) with PEFT adapters applied per row."""

    backend = "pytorch"

    def __init__(self, key: str, model, tokenizer, max_adapters: int):
        self.key = key
        self.model = model
        self.tokenizer = tokenizer
        self.max_adapters = max_adapters
        self.adapters: OrderedDict[str, Path] = OrderedDict()  # name -> folder, least recent first
        cfg = model.config
        self.context_length = int(getattr(cfg, "max_position_embeddings", None) or tokenizer.model_max_length)
        self.stop_ids = stop_token_ids(tokenizer, model)
        self.device = next(model.parameters()).device

    def new_batch(self):
        from tuneforge.serving.kvbatch import TorchBatch

        return TorchBatch(self)

    def _load_adapter(self, folder: Path, name: str) -> None:
        from peft import PeftModel

        if not hasattr(self.model, "peft_config"):
            self.model = PeftModel.from_pretrained(self.model, folder, adapter_name=name,
                                                   autocast_adapter_dtype=False)
        else:
            self.model.load_adapter(folder, adapter_name=name, autocast_adapter_dtype=False)
        self.model.eval()
        self._lora_on = None  # new LoRA layers: set every layer's state again at the next forward
        dtype = next(self.model.parameters()).dtype
        for pname, param in self.model.named_parameters():
            if name in pname and param.dtype != dtype:  # keep LoRA in the base dtype: no casts per step
                param.data = param.data.to(dtype)

    def drop_adapter(self, name: str) -> None:
        if name not in self.adapters:
            return
        del self.adapters[name]
        if not self.adapters:  # the last one: take the LoRA layers out, the base runs bare again
            self.model = self.model.unload()
            return
        self.model.delete_adapter(name)
        self._lora_on = None
        self.model.set_adapter(next(iter(self.adapters)))  # PEFT keeps a deleted adapter "active"

    def _lora_enabled(self, enabled: bool) -> None:
        if getattr(self, "_lora_on", None) != enabled:
            if enabled:
                self.model.base_model.enable_adapter_layers()
            else:
                self.model.base_model.disable_adapter_layers()
            self._lora_on = enabled

    def forward(self, input_ids, attention_mask, position_ids, cache, adapter_names, logits_to_keep=1):
        kwargs = {}
        if hasattr(self.model, "peft_config"):
            names = set(adapter_names)
            # Toggling LoRA layers walks every module: do it only when the batch's kind changes.
            self._lora_enabled(names != {BASE_ADAPTER})
            if len(names) == 1 and BASE_ADAPTER not in names:  # one adapter for all rows: plain path
                (name,) = names
                if self.model.active_adapter != name:
                    self.model.set_adapter(name)
            elif len(names) > 1:
                kwargs["adapter_names"] = adapter_names
        with torch.inference_mode():
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             past_key_values=cache, use_cache=True, logits_to_keep=logits_to_keep, **kwargs)
        return out.logits


def backend_name(device: str | None = None, dtype: torch.dtype | None = None,
                 settings: Settings | None = None) -> str:
    """`TUNEFORGE_INFERENCE_BACKEND`: auto (llama.cpp for GGUF Llama bases on CPU), llama.cpp, pytorch."""
    name = _given(settings).inference_backend  # validated by the settings
    if name == "auto":
        on_cpu = (device or default_device_dtype(settings)[0]) == "cpu" and dtype in (None, torch.float32)
        from tuneforge.serving import llamacpp

        return "llama.cpp" if on_cpu and llamacpp.available() else "pytorch"
    return "llama.cpp" if name.startswith("llama") else "pytorch"


def _llamacpp_gguf(base: str, folder: Path, settings: Settings, forced: bool) -> Path | None:
    """The GGUF that llama.cpp can serve for `base`, or None (then PyTorch serves it)."""
    import json

    from tuneforge.models.catalog import resolve_base
    from tuneforge.models.provision import source_path

    spec = resolve_base(base, settings)
    config = json.loads((folder / "config.json").read_text("utf-8"))
    reason = None
    if spec.kind not in ("wheel_gguf", "gguf"):
        reason = "it is not a GGUF model"
    elif config.get("model_type") != "llama":  # our LoRA conversion knows Llama's tensor layout
        reason = f"its architecture is {config.get('model_type')!r}, not llama"
    if reason is None:
        return source_path(spec)
    if forced:
        raise ValueError(f"TUNEFORGE_INFERENCE_BACKEND=llama.cpp cannot serve {base}: {reason}.")
    return None


def load_weights(key: str, base: str, full_path: Path | None, settings: Settings, *,
                 device: str | None = None, dtype: torch.dtype | None = None,
                 max_adapters: int = 8, max_rows: int = 16):
    """Load a base (by name) or a full fine-tune (by folder) and its tokenizer, off the engine thread:
    a `LlamaCppModel` for GGUF Llama bases on CPU (when llama.cpp is installed), else a `LoadedModel`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_folder = base_model_folder(base, settings)
    if full_path is None and backend_name(device, dtype, settings) == "llama.cpp":
        forced = settings.inference_backend != "auto"
        gguf = _llamacpp_gguf(base, base_folder, settings, forced)
        if gguf is not None:
            from tuneforge.serving.llamacpp import LlamaCppModel, serving_gguf

            threads = settings.inference_threads
            served = serving_gguf(gguf, base_folder, weights=settings.llamacpp_weights, threads=threads,
                                  llama_log=settings.llamacpp_log)
            return LlamaCppModel(key, served, base_folder, settings.cache_dir / "lora-gguf", max_adapters,
                                 max_rows, settings.llamacpp_cells, source=gguf, threads=threads,
                                 llama_log=settings.llamacpp_log)
    dev, dt = default_device_dtype(settings)
    device, dtype = device or dev, dtype or dt
    folder = full_path if full_path is not None else base_folder
    tok_folder = folder if (folder / "tokenizer_config.json").is_file() else base_folder
    tokenizer = AutoTokenizer.from_pretrained(tok_folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
    log.info("loaded %s from %s (%s, %s)", key, folder, device, dtype)
    return LoadedModel(key, model, tokenizer, max_adapters)
