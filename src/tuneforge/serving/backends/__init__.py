"""Serving backends: what turns tokens into logits for the engine, behind one typed protocol.

- `protocol.py`: `Backend` (one set of weights and its adapters) and `Batch` (its running rows' KV state);
  the engine uses nothing else. `adapters.py`: the adapter LRU and no-op defaults for optional hooks.
- `loading.py`: `BackendLoader` chooses and loads the backend for a model (TUNEFORGE_INFERENCE_BACKEND).
- `pytorch.py`: transformers + PEFT. `llamacpp*.py`, `lora_merge.py`: llama.cpp on CPU, with merged copies
  of adapters in use (its `dedicated` copies).

A new backend is a module here whose class satisfies `protocol.Backend` (inherit `AdapterLRU` for the
defaults) and a branch in `BackendLoader.load`.
"""
