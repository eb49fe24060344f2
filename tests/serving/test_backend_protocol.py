"""Both backends satisfy the one typed protocol the engine uses, and the engine knows no backend: a new
backend (vLLM) only has to satisfy `protocol.Backend` and be chosen by `BackendLoader`."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from tuneforge.serving import engine, rows
from tuneforge.serving.backends.loading import BackendLoader
from tuneforge.serving.backends.protocol import BASE_ADAPTER, Backend, Batch

AGNOSTIC = {"tuneforge.serving.backends.protocol", "tuneforge.serving.backends.adapters",
            "tuneforge.serving.backends.loading"}


def _check(backend, name: str) -> None:
    assert isinstance(backend, Backend) and backend.name == name and not backend.closed
    batch = backend.new_batch()
    assert isinstance(batch, Batch)
    ids = backend.tokenizer.encode("Hello there")
    logits = batch.prefill(ids, BASE_ADAPTER, 1, all_logits=False)
    assert logits.shape[0] == 1 and logits.dtype.is_floating_point
    assert batch.step([int(logits[-1].argmax())], [len(ids)], [BASE_ADAPTER]).shape == logits.shape
    batch.keep([])
    assert backend.dedicated_copies() == []


def test_the_pytorch_backend_satisfies_the_protocol(settings, tiny_model, adapter_dir):
    loader = BackendLoader(settings)
    backend = loader.load(f"base:{tiny_model}", tiny_model)
    _check(backend, "pytorch")
    assert backend.dedicated(adapter_dir) is None  # PyTorch always applies adapters per step
    assert backend.new_batch().free_cells() is None  # its cache grows with the rows
    backend.close()
    assert backend.closed


@pytest.mark.slow  # loads the real base in llama.cpp
def test_the_llamacpp_backend_satisfies_the_protocol(settings):
    loader = BackendLoader(dataclasses.replace(settings, inference_backend="llama.cpp", llamacpp_cells=512))
    try:
        backend = loader.load("base:smollm2-135m-instruct", "smollm2-135m-instruct")
        _check(backend, "llama.cpp")
        assert backend.new_batch().free_cells() == 512  # a fixed KV pool the engine rations
        backend.close()
        assert backend.closed
    finally:
        loader.close()


def _imports(module) -> set[str]:
    tree = ast.parse(Path(module.__file__).read_text("utf-8"))
    return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}


def test_the_engine_and_its_rows_know_no_backend():
    for module in (engine, rows):
        backends = {m for m in _imports(module) if m.startswith("tuneforge.serving.backends")}
        assert backends <= AGNOSTIC, module.__name__
        assert not {m for m in _imports(module) if "llama" in m or "peft" in m}
    source = Path(engine.__file__).read_text("utf-8").lower()
    for word in ("llama", "merged", "hasattr", "torchmodel", "peft"):
        assert word not in source, word
