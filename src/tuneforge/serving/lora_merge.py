"""A LoRA adapter merged into a copy of its llama.cpp base GGUF: W' = W + (alpha / r) * B @ A.

llama.cpp applies an adapter at run time as four extra graph operations per adapted projection. On a
small model on a small CPU those operations, not the arithmetic, are what an adapter costs: measured
18-27% of the base's decode speed for rank 16 on every projection of the built-in base. A merged copy
decodes exactly as fast as the base. The engine keeps a few merged copies of the adapters in use
(`TUNEFORGE_LLAMACPP_MERGED_MB`) and serves the others at run time.

The copy is the served base file with the adapted tensors' bytes rewritten in place: same types, same
sizes, so the metadata and every other tensor stay byte for byte. Only 8-bit and wider tensors are
merged: a 4-bit grid is too coarse to carry a LoRA update, so such bases keep run-time adapters.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# GGML types whose rounding step is fine enough that W + delta keeps the delta (gguf.quants writes them)
_MERGEABLE = {"F32", "F16", "Q8_0"}


class NotMergeable(Exception):
    """The base's tensors cannot take the adapter without losing it (a 4-bit or K-quant base)."""


@dataclass(frozen=True)
class TensorSlot:
    type_name: str
    offset: int  # from the start of the file
    size: int  # bytes


def tensor_table(gguf_path: Path) -> dict[str, TensorSlot]:
    """Where each tensor's bytes lie in a GGUF file, read with ggml's own GGUF parser (the Python
    reader also decodes the whole vocabulary, which takes seconds)."""
    import gguf
    import llama_cpp

    lib = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))

    class InitParams(ctypes.Structure):
        _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.c_void_p)]

    lib.gguf_init_from_file.restype = ctypes.c_void_p
    lib.gguf_init_from_file.argtypes = [ctypes.c_char_p, InitParams]
    size_t = ctypes.c_size_t
    for name, restype in (("gguf_get_tensor_name", ctypes.c_char_p), ("gguf_get_tensor_type", ctypes.c_int),
                          ("gguf_get_tensor_offset", size_t), ("gguf_get_tensor_size", size_t)):
        getattr(lib, name).restype = restype
        getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_int64]
    lib.gguf_get_n_tensors.restype = ctypes.c_int64
    lib.gguf_get_n_tensors.argtypes = [ctypes.c_void_p]
    lib.gguf_get_data_offset.restype = ctypes.c_size_t
    lib.gguf_get_data_offset.argtypes = [ctypes.c_void_p]
    lib.gguf_free.argtypes = [ctypes.c_void_p]
    context = lib.gguf_init_from_file(str(gguf_path).encode(), InitParams(True, None))
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
    import gguf

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
        origin_bytes = np.memmap(source_gguf, dtype=np.uint8, mode="r")
        target_bytes = np.memmap(partial, dtype=np.uint8, mode="r+")
        for name, delta in deltas:
            src, dst = source[name], serving[name]
            weights = gguf.quants.dequantize(
                np.array(origin_bytes[src.offset:src.offset + src.size]).reshape(delta.shape[0], -1),
                gguf.GGMLQuantizationType[src.type_name])
            packed = gguf.quants.quantize(weights + delta, gguf.GGMLQuantizationType[dst.type_name])
            target_bytes[dst.offset:dst.offset + dst.size] = packed.view(np.uint8).ravel()
        target_bytes.flush()
        del target_bytes, origin_bytes
        os.replace(partial, output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return output


_NOT_MERGEABLE_EXIT = 3


def merge_lora_in_subprocess(source_gguf: Path, serving_gguf: Path, lora_gguf: Path, output: Path) -> Path:
    """`merge_lora` in a process of its own, as the server does it. Its matrix products start thread
    pools (BLAS, OpenMP) that in the server's process kept competing with llama.cpp's threads after the
    merge was done: measured, the base then decoded at half its speed for good."""
    done = subprocess.run([sys.executable, "-m", "tuneforge.serving.lora_merge", str(source_gguf),
                           str(serving_gguf), str(lora_gguf), str(output)], capture_output=True, text=True)
    lines = done.stderr.strip().splitlines()
    message = lines[-1] if lines else f"exit status {done.returncode}"
    if done.returncode == _NOT_MERGEABLE_EXIT:
        raise NotMergeable(message)
    if done.returncode != 0:
        raise OSError(f"merging {lora_gguf} into {serving_gguf} failed: {message}")
    return output


def main(argv: list[str]) -> int:
    try:
        merge_lora(*(Path(arg) for arg in argv))
    except NotMergeable as exc:
        print(exc, file=sys.stderr)
        return _NOT_MERGEABLE_EXIT
    return 0


__all__ = ["NotMergeable", "merge_lora", "merge_lora_in_subprocess", "tensor_table"]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
