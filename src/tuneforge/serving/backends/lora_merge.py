"""A LoRA adapter merged into a copy of its llama.cpp base GGUF: W' = W + (alpha / r) * B @ A.

llama.cpp applies an adapter at run time as four extra graph operations per adapted projection. On a
small model on a small CPU those operations, not the arithmetic, are what an adapter costs: measured
18-27% of the base's decode speed for rank 16 on every projection of the built-in base. A merged copy
decodes exactly as fast as the base. `llamacpp_merged.MergedCopies` keeps a few merged copies of the
adapters in use (`TUNEFORGE_LLAMACPP_MERGED_MB`); the others are applied at run time.

The copy is the served base file with the adapted tensors' bytes rewritten in place: same types, same
sizes, so the metadata and every other tensor stay byte for byte. Only 8-bit and wider tensors are
merged: a 4-bit grid is too coarse to carry a LoRA update, so such bases keep run-time adapters.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tuneforge.quiet import quiet_libraries

# GGML types whose rounding step is fine enough that W + delta keeps the delta (gguf.quants writes them)
_MERGEABLE = {"F32", "F16", "Q8_0"}


class NotMergeable(Exception):
    """The base's tensors cannot take the adapter without losing it (a 4-bit or K-quant base)."""


@dataclass(frozen=True)
class TensorSlot:
    type_name: str
    offset: int  # from the start of the file
    size: int  # bytes


class _InitParams(ctypes.Structure):
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.c_void_p)]


class _TypeTraits(ctypes.Structure):  # ggml.h's struct ggml_type_traits
    _fields_ = [("type_name", ctypes.c_char_p), ("blck_size", ctypes.c_int64),
                ("blck_size_interleave", ctypes.c_int64), ("type_size", ctypes.c_size_t),
                ("is_quantized", ctypes.c_bool), ("to_float", ctypes.c_void_p),
                ("from_float_ref", ctypes.c_void_p)]


_TO_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)


@functools.cache
def _ggml():
    """llama.cpp's own ggml library (shipped with llama-cpp-python): its GGUF parser and its
    quantization routines, which are C and about 50x faster than numpy's."""
    import llama_cpp

    lib = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
    size_t, i64, ptr = ctypes.c_size_t, ctypes.c_int64, ctypes.c_void_p
    signatures = {"gguf_init_from_file": (ptr, [ctypes.c_char_p, _InitParams]), "gguf_free": (None, [ptr]),
                  "gguf_get_n_tensors": (i64, [ptr]), "gguf_get_data_offset": (size_t, [ptr]),
                  "gguf_get_tensor_name": (ctypes.c_char_p, [ptr, i64]),
                  "gguf_get_tensor_type": (ctypes.c_int, [ptr, i64]),
                  "gguf_get_tensor_offset": (size_t, [ptr, i64]),
                  "gguf_get_tensor_size": (size_t, [ptr, i64]),
                  "ggml_get_type_traits": (ctypes.POINTER(_TypeTraits), [ctypes.c_int]),
                  "ggml_quantize_chunk": (size_t, [ctypes.c_int, ptr, ptr, i64, i64, i64, ptr])}
    for name, (restype, argtypes) in signatures.items():
        getattr(lib, name).restype, getattr(lib, name).argtypes = restype, argtypes
    return lib


def tensor_table(gguf_path: Path) -> dict[str, TensorSlot]:
    """Where each tensor's bytes lie in a GGUF file, read with ggml's own GGUF parser (the Python
    reader also decodes the whole vocabulary, which takes seconds)."""
    import gguf

    lib = _ggml()
    context = lib.gguf_init_from_file(str(gguf_path).encode(), _InitParams(True, None))
    if not context:
        raise OSError(f"ggml could not read the GGUF header of {gguf_path}")
    try:
        data_start = lib.gguf_get_data_offset(context)
        slots = {}
        for i in range(lib.gguf_get_n_tensors(context)):
            kind = gguf.GGMLQuantizationType(lib.gguf_get_tensor_type(context, i)).name
            offset = data_start + lib.gguf_get_tensor_offset(context, i)
            slots[lib.gguf_get_tensor_name(context, i).decode()] = TensorSlot(
                kind, offset, lib.gguf_get_tensor_size(context, i))
        return slots
    finally:
        lib.gguf_free(context)


def _ggml_traits(kind: str):
    """ggml's routines for a quantized type, or None when this library's layout is not the one
    expected (then gguf's numpy code does the same work, slower)."""
    import gguf

    qtype = gguf.GGMLQuantizationType[kind]
    traits = _ggml().ggml_get_type_traits(int(qtype)).contents
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    name_ok = (traits.type_name or b"").decode() == kind.lower()
    return traits if name_ok and (traits.blck_size, traits.type_size) == (block, size) else None


def dequantize(raw: np.ndarray, kind: str, rows: int) -> np.ndarray:
    """Bytes of a tensor of GGML type `kind` -> float32 [rows, columns]."""
    import gguf

    traits = _ggml_traits(kind) if kind not in ("F32", "F16") else None
    if traits is None or not traits.to_float:
        return gguf.quants.dequantize(raw.reshape(rows, -1), gguf.GGMLQuantizationType[kind])
    raw = np.ascontiguousarray(raw)
    out = np.empty(raw.size // traits.type_size * traits.blck_size, dtype=np.float32)
    _TO_FLOAT(traits.to_float)(raw.ctypes.data, out.ctypes.data, out.size)
    return out.reshape(rows, -1)


def quantize(weights: np.ndarray, kind: str) -> np.ndarray:
    """float32 [rows, columns] -> the bytes of a tensor of GGML type `kind`."""
    import gguf

    qtype = gguf.GGMLQuantizationType[kind]
    if kind in ("F32", "F16") or _ggml_traits(kind) is None:
        return gguf.quants.quantize(weights, qtype).view(np.uint8).ravel()
    weights = np.ascontiguousarray(weights, dtype=np.float32)
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    out = np.empty(weights.size // block * size, dtype=np.uint8)
    rows, columns = weights.shape
    _ggml().ggml_quantize_chunk(int(qtype), weights.ctypes.data, out.ctypes.data, 0, rows, columns, None)
    return out


def lora_deltas(lora_gguf: Path):
    """Yield (base tensor name, delta [out, in] float32) for each A/B pair of a llama.cpp LoRA GGUF."""
    import gguf

    reader = gguf.GGUFReader(str(lora_gguf))
    alpha = float(reader.fields[gguf.Keys.Adapter.LORA_ALPHA].contents())
    parts: dict[str, dict[str, np.ndarray]] = {}
    for tensor in reader.tensors:
        name, part = tensor.name.rsplit(".lora_", 1)
        parts.setdefault(name, {})[part] = np.asarray(tensor.data, dtype=np.float32)
    for name, pair in parts.items():
        a, b = pair["a"], pair["b"]  # [r, in], [out, r]
        yield name, (alpha / a.shape[0]) * (b @ a)


def merge_lora(source_gguf: Path, serving_gguf: Path, lora_gguf: Path, output: Path) -> Path:
    """Write `output`: the serving GGUF with each adapted tensor replaced by source weights + update,
    in the serving file's type.

    The weights come from the source file (the most precise copy there is): the serving copy's 8-bit
    values lie on the very grid they would be rounded back to, so an update smaller than one step
    (most of a LoRA's) would vanish. From the source, the rounding error is the same kind of noise the
    serving copy already carries, and the update survives."""

    source, serving = tensor_table(source_gguf), tensor_table(serving_gguf)
    deltas = list(lora_deltas(lora_gguf))
    for name, _delta in deltas:
        if name not in serving or name not in source:
            raise NotMergeable(f"the adapter changes {name}, which {serving_gguf.name} does not have")
        kind, origin = serving[name].type_name, source[name].type_name
        if kind not in _MERGEABLE:
            raise NotMergeable(f"{name} is {kind} in {serving_gguf.name}; merging needs 8 bits or more")
        if kind == origin and kind != "F32":
            raise NotMergeable(f"{name} is served in its source type {kind}: an update smaller than one "
                               "rounding step would be lost")
    partial = output.with_suffix(f".{os.getpid()}.partial")
    shutil.copyfile(serving_gguf, partial)
    try:
        _rewrite(partial, source_gguf, source, serving, deltas)
        os.replace(partial, output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return output


def _rewrite(partial: Path, source_gguf: Path, source: dict[str, TensorSlot], serving: dict[str, TensorSlot],
             deltas: list[tuple[str, np.ndarray]]) -> None:
    origin_bytes = np.memmap(source_gguf, dtype=np.uint8, mode="r")
    target_bytes = np.memmap(partial, dtype=np.uint8, mode="r+")
    for name, delta in deltas:
        src, dst = source[name], serving[name]
        weights = dequantize(origin_bytes[src.offset:src.offset + src.size], src.type_name, delta.shape[0])
        target_bytes[dst.offset:dst.offset + dst.size] = quantize(weights + delta, dst.type_name)
    target_bytes.flush()


_NOT_MERGEABLE_EXIT = 3


def merge_lora_in_subprocess(source_gguf: Path, serving_gguf: Path, lora_gguf: Path, output: Path) -> Path:
    """`merge_lora` in a process of its own, as the server does it. Its matrix products start thread
    pools (BLAS, OpenMP) that in the server's process kept competing with llama.cpp's threads after the
    merge was done: measured, the base then decoded at half its speed for good."""
    done = subprocess.run([sys.executable, "-m", "tuneforge.serving.backends.lora_merge", str(source_gguf),
                           str(serving_gguf), str(lora_gguf), str(output)], capture_output=True,
                          text=True)
    lines = done.stderr.strip().splitlines()
    message = lines[-1] if lines else f"exit status {done.returncode}"
    if done.returncode == _NOT_MERGEABLE_EXIT:
        raise NotMergeable(message)
    if done.returncode != 0:
        raise OSError(f"merging {lora_gguf} into {serving_gguf} failed: {message}")
    return output


def main(argv: list[str]) -> int:
    os.nice(10)  # a background job: requests being decoded meanwhile come first
    quiet_libraries()
    try:
        merge_lora(*(Path(arg) for arg in argv))
    except NotMergeable as exc:
        print(exc, file=sys.stderr)
        return _NOT_MERGEABLE_EXIT
    return 0


__all__ = ["NotMergeable", "merge_lora", "merge_lora_in_subprocess", "tensor_table"]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
