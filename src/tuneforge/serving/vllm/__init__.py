"""Serving on vLLM (docs/vllm.md): tuneforge stays the OpenAI gateway (auth, projects, model ids, errors,
limits) and forwards generation to vLLM's OpenAI server, one fleet of replicas per base model.

`server.py` starts and watches a managed vLLM server; `replica.py` is one server's HTTP client with the
adapters registered on it; `fleet.py` picks the replica for a request; `backends/vllm.py` turns a
tuneforge request into vLLM's and its stream back into the engine's events."""
