"""The llama.cpp backend: a GGUF base decoded by llama.cpp on CPU, LoRA adapters applied per decode call.

On a CPU, llama.cpp runs the built-in base from its own Q4_1 GGUF (the weights the PyTorch copy was
dequantized from, so the model is the same) several times faster than PyTorch, and decodes many
sequences in one call. tuneforge keeps its own tokenizer, sampling, stop handling and logprobs: llama.cpp
only turns tokens into logits. One context holds every row's KV cache (one llama.cpp sequence per row);
rows of different adapters are decoded in separate calls of the same step, each with its adapter set.
LoRA adapters are converted from PEFT to llama.cpp's GGUF LoRA format once and cached.

Everything here runs on the engine thread, except loading (the loader thread).
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import torch

from tuneforge.cpuinfo import cpu_model_and_flags
from tuneforge.models.export_gguf import UnsupportedAdapter, convert_lora
from tuneforge.serving.backends.adapters import AdapterLRU, adapter_name
from tuneforge.serving.backends.llamacpp_batch import LlamaCppBatch
from tuneforge.serving.backends.protocol import BASE_ADAPTER, Backend
from tuneforge.serving.params import ServingError
from tuneforge.serving.sampler import stop_token_ids

if TYPE_CHECKING:
    from tuneforge.serving.backends.llamacpp_merged import MergedCopies

log = logging.getLogger("tuneforge.serving")
_init_lock = threading.Lock()
_convert_lock = threading.Lock()  # one PEFT -> GGUF conversion at a time: they share partial file names
_initialised = False


def available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def _lib(llama_log: bool = False):
    """llama.cpp, initialised once; the first caller decides whether it logs (TUNEFORGE_LLAMACPP_LOG)."""
    global _initialised
    import llama_cpp as lib

    with _init_lock:
        if not _initialised:
            lib.llama_backend_init()
            if not llama_log:
                _silence(lib)  # llama.cpp logs every load and context to stderr
            _initialised = True
    return lib


_log_callback = None  # kept alive: llama.cpp holds the pointer


def _silence(lib) -> None:
    global _log_callback

    @lib.llama_log_callback
    def quiet(level, text, _user_data):
        if level == 4:  # GGML_LOG_LEVEL_ERROR
            log.error("llama.cpp: %s", text.decode("utf-8", "replace").rstrip())

    _log_callback = quiet
    lib.llama_log_set(quiet, ctypes.c_void_p(0))


def serving_gguf(source: Path, cache_folder: Path, *, weights: str = "q8_0", threads: int | None = None,
                 llama_log: bool = False) -> Path:
    """The GGUF llama.cpp serves for `source`: by default its weights requantized to Q8_0 once, next to
    the provisioned model. From the built-in Q4_1 file that is near-lossless (every 4-bit value fits
    8 bits), and llama.cpp's batched matrix kernels on AVX2 CPUs handle Q8_0 much better than Q4_1
    (measured: 8 streams 1.9x one stream instead of 1.4x). `weights="source"`
    (TUNEFORGE_LLAMACPP_WEIGHTS) serves the file as it is."""
    if weights == "source":
        return source
    stat = source.stat()
    target = cache_folder / f"llamacpp-q8_0-{stat.st_size}-{int(stat.st_mtime)}.gguf"
    if not target.is_file():
        lib = _lib(llama_log)
        params = lib.llama_model_quantize_default_params()
        params.ftype = lib.LLAMA_FTYPE_MOSTLY_Q8_0
        params.allow_requantize = True
        params.nthread = _threads(threads)
        partial = target.with_suffix(f".{os.getpid()}.partial")
        if lib.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params)) != 0:
            partial.unlink(missing_ok=True)
            raise OSError(f"llama.cpp could not requantize {source} to Q8_0")
        os.replace(partial, target)  # atomic: another process making the same copy meanwhile is harmless
        for old in cache_folder.glob("llamacpp-q8_0-*.gguf"):
            if old != target:  # copies of an earlier version of the source
                old.unlink(missing_ok=True)
    return target


_merge_ids = itertools.count()
_HOLD_GIL_TOKENS = 64
_held_decode = None


def _decode_holding_gil():
    """llama_decode through a PyDLL handle, which keeps the GIL during the call. llama.cpp's threads
    spin at a barrier after every operation, so when a Python thread (the event loop sending the last
    token) takes one of a small CPU's cores mid-call, the others spin until it is back. Holding the GIL
    makes the server's Python work run between decode calls instead: measured on 2 cores, 78 -> 90
    tokens/s for one stream through the HTTP API. A call of a few rows lasts milliseconds."""
    global _held_decode
    if _held_decode is None:
        import llama_cpp.llama_cpp as raw

        fn = ctypes.PyDLL(raw._lib._name).llama_decode
        fn.argtypes = [raw.llama_context_p_ctypes, raw.llama_batch]
        fn.restype = ctypes.c_int32
        _held_decode = fn
    return _held_decode


def use_extra_buffers() -> bool:
    """Whether llama.cpp may put weights in its extra buffer types (repacked layouts, AMX tiles). Not on
    AMX CPUs: there this build's AMX matmul (ggml_backend_amx_mul_mat) crashes the process in the first
    llama_decode (seen with llama-cpp-python 0.3.36 on a Xeon with amx_bf16/amx_int8, Q4_1 and Q8_0)."""
    return not any(flag.startswith("amx") for flag in cpu_model_and_flags()[1])


def _threads(threads: int | None) -> int:
    """TUNEFORGE_INFERENCE_THREADS, else every core this process may use."""
    return threads or len(os.sched_getaffinity(0))


class LlamaCppModel(AdapterLRU):
    """A GGUF base loaded once in llama.cpp, with a bounded LRU of LoRA adapters (a `protocol.Backend`).
    `merged`: the engine's merged copies, which make this base's dedicated copies of adapters (None for
    a merged copy itself)."""

    name = "llama.cpp"

    def __init__(self, key: str, gguf: Path, hf_folder: Path, adapter_cache: Path, max_adapters: int,
                 max_rows: int, n_ctx: int, source: Path | None = None, *, threads: int | None = None,
                 llama_log: bool = False, merged: MergedCopies | None = None):
        from transformers import AutoConfig, AutoTokenizer, GenerationConfig

        lib = self._lib = _lib(llama_log)
        self.threads = threads
        self.key = key
        self.merged = merged
        self.gguf, self.source = gguf, source or gguf  # served file; the most precise copy of the weights
        self.hf_folder = hf_folder
        self.adapter_cache = adapter_cache
        self.max_rows = max_rows
        self.max_adapters = max_adapters
        self.tokenizer = AutoTokenizer.from_pretrained(hf_folder)
        config = AutoConfig.from_pretrained(hf_folder)
        generation = GenerationConfig.from_pretrained(hf_folder)
        self.stop_ids = stop_token_ids(self.tokenizer, SimpleNamespace(generation_config=generation,
                                                                       eos_token_id=config.eos_token_id))
        mparams = lib.llama_model_default_params()
        mparams.use_extra_bufts = use_extra_buffers()
        self._model = lib.llama_model_load_from_file(str(gguf).encode(), mparams)
        if not self._model:
            raise OSError(f"llama.cpp could not load {gguf}")
        trained_context = int(lib.llama_model_n_ctx_train(self._model))
        self.n_vocab = int(lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(self._model)))
        cparams = lib.llama_context_default_params()
        cparams.n_ctx = n_ctx  # the KV pool every row shares (TUNEFORGE_LLAMACPP_CELLS)
        cparams.n_batch = cparams.n_ubatch = 512
        cparams.n_seq_max = min(max(max_rows, 128) + 1, 256)  # n may reach 128 rows in one request
        cparams.n_threads = cparams.n_threads_batch = _threads(threads)
        cparams.kv_unified = True  # one pool of cells for all rows: a shared prompt is stored once
        cparams.no_perf = True
        self._ctx = lib.llama_init_from_model(self._model, cparams)
        if not self._ctx:
            raise OSError(f"llama.cpp could not create a context for {gguf} (n_ctx {cparams.n_ctx})")
        self.n_ctx = int(lib.llama_n_ctx(self._ctx))
        # A pool smaller than the trained context caps the context: one row must always fit on its own.
        self.context_length = min(trained_context, self.n_ctx)
        self.n_seq_max = int(cparams.n_seq_max)
        self._memory = lib.llama_get_memory(self._ctx)
        self._batch = lib.llama_batch_init(512, 0, 1)
        self._batch_size = 512
        self.adapters: OrderedDict[str, Path] = OrderedDict()  # name -> folder, least recent first
        self._lora: dict[str, object] = {}  # name -> llama_adapter_lora pointer
        self._active: str | None = None  # the adapter set on the context now
        log.info("loaded %s from %s with llama.cpp (%d cells, %d threads)", key, gguf, self.n_ctx,
                 cparams.n_threads)

    def new_batch(self) -> LlamaCppBatch:
        return LlamaCppBatch(self)

    # ---- merged copies (`llamacpp_merged.MergedCopies`) ------------------------------------------
    def merged_key(self, folder: Path) -> str:
        return f"merged:{adapter_name(folder)}@{self.key}"

    def dedicated(self, folder: Path) -> Backend | None:
        """The adapter's merged copy when loaded; else starts making one (until it is loaded, and
        whenever it cannot be, this base applies the adapter per step: the same model up to rounding)."""
        return self.merged.get_or_start(self, folder) if self.merged else None

    def drop_dedicated(self, folder: Path) -> Backend | None:
        return self.merged.remove(self.merged_key(folder)) if self.merged else None

    def dedicated_copies(self) -> list[Backend]:
        return self.merged.copies_of(self) if self.merged else []

    def between_steps(self, idle) -> None:
        if self.merged:
            self.merged.between_steps(idle)

    def wait_background(self, timeout: float) -> None:
        if self.merged:
            self.merged.wait(timeout)

    def memory_bytes(self) -> int:
        """What this model holds in memory: its weights and its KV pool (F16 keys and values)."""
        lib = self._lib
        n_layer, n_embd = lib.llama_model_n_layer(self._model), lib.llama_model_n_embd(self._model)
        kv_width = n_embd // lib.llama_model_n_head(self._model) * lib.llama_model_n_head_kv(self._model)
        return int(lib.llama_model_size(self._model)) + self.n_ctx * n_layer * 2 * kv_width * 2

    def merged_copy(self, key: str, folder: Path) -> LlamaCppModel:
        """A model of its own with the adapter in `folder` merged into its weights (decodes as fast as
        the base). Raises `NotMergeable` when the weights cannot carry it. The merged file is deleted
        once loaded: llama.cpp maps it, so it lives exactly as long as the model."""
        from tuneforge.serving.backends.lora_merge import merge_lora_in_subprocess

        path = self.adapter_cache / f"merged-{os.getpid()}-{next(_merge_ids)}.gguf"
        try:
            merge_lora_in_subprocess(self.source, self.gguf, self._adapter_gguf(folder), path)
            return LlamaCppModel(key, path, self.hf_folder, self.adapter_cache, 0, self.max_rows, self.n_ctx,
                                 threads=self.threads)
        finally:
            path.unlink(missing_ok=True)

    # ---- adapters --------------------------------------------------------------------------------
    def prepare_adapter(self, folder: Path) -> None:
        self._adapter_gguf(folder)  # convert PEFT -> GGUF now, in the request's thread; loading is quick

    def _load_adapter(self, folder: Path, name: str) -> None:
        path = self._adapter_gguf(folder)
        pointer = self._lib.llama_adapter_lora_init(self._model, str(path).encode())
        if not pointer:
            raise ServingError(f"llama.cpp could not load the adapter converted from {folder} ({path}).",
                               status=500)
        self._lora[name] = pointer

    def _adapter_gguf(self, folder: Path) -> Path:
        """The adapter as a llama.cpp LoRA GGUF, converted once (keyed by the adapter's content)."""
        digest = hashlib.sha256()
        for part in ("adapter_config.json", "adapter_model.safetensors"):
            digest.update((folder / part).read_bytes())
        path = self.adapter_cache / f"{digest.hexdigest()[:24]}.gguf"
        if path.is_file():
            return path
        with _convert_lock:  # a request and a merge may both want it converted
            if not path.is_file():
                self.adapter_cache.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(f".{os.getpid()}.partial")
                try:
                    convert_lora(folder, self.hf_folder, partial)
                except UnsupportedAdapter as exc:
                    raise ServingError(f"{exc}. Serve it with TUNEFORGE_INFERENCE_BACKEND=pytorch.",
                                       status=400) from exc
                os.replace(partial, path)
        return path

    def drop_adapter(self, name: str) -> None:
        if name not in self.adapters:
            return
        del self.adapters[name]
        pointer = self._lora.pop(name)
        if self._active == name:
            self._set_adapter(BASE_ADAPTER)
        self._lib.llama_adapter_lora_free(pointer)

    def _set_adapter(self, name: str) -> None:
        if self._active == name:
            return
        lib = self._lib
        if name == BASE_ADAPTER:
            lib.llama_set_adapters_lora(self._ctx, None, 0, None)
        else:
            adapters = (lib.llama_adapter_lora_p_ctypes * 1)(self._lora[name])
            lib.llama_set_adapters_lora(self._ctx, adapters, 1, (ctypes.c_float * 1)(1.0))
        self._active = name

    # ---- decoding --------------------------------------------------------------------------------
    def decode(self, tokens: list[int], positions: list[int], seqs: list[int], outputs: list[bool],
               adapter: str) -> int:
        """One llama_decode call; returns llama.cpp's status (0 ok, 1 no room in the KV cache)."""
        self._set_adapter(adapter)
        batch = self._batch
        n = len(tokens)
        assert n <= self._batch_size
        for i, (tok, pos, seq, out) in enumerate(zip(tokens, positions, seqs, outputs, strict=True)):
            batch.token[i] = tok
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = out
        batch.n_tokens = n
        # Short decode calls (generation steps) keep the GIL; prompt chunks let the server run meanwhile.
        decode = _decode_holding_gil() if n <= _HOLD_GIL_TOKENS else self._lib.llama_decode
        return int(decode(self._ctx, batch))

    def logits(self, n_outputs: int) -> torch.Tensor:
        """The last decode's output logits [n_outputs, V], copied into a float32 tensor."""
        pointer = self._lib.llama_get_logits(self._ctx)
        array = np.ctypeslib.as_array(pointer, shape=(n_outputs, self.n_vocab))
        return torch.from_numpy(array.copy())

    def forget(self, seq: int) -> None:
        self._lib.llama_memory_seq_rm(self._memory, seq, -1, -1)

    def copy_sequence(self, source: int, target: int) -> None:
        self._lib.llama_memory_seq_cp(self._memory, source, target, -1, -1)

    def close(self) -> None:
        self.closed = True
        lib = self._lib
        for pointer in self._lora.values():
            lib.llama_adapter_lora_free(pointer)
        self._lora.clear()
        if self._ctx:
            lib.llama_batch_free(self._batch)
            lib.llama_free(self._ctx)
            lib.llama_model_free(self._model)
            self._ctx = self._model = None

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may already be gone
            pass


__all__ = ["LlamaCppModel", "available", "serving_gguf"]
