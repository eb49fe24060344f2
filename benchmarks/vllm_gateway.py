"""The vLLM backend's cost as a gateway: 8 concurrent streams through tuneforge against the same 8 sent
straight to the same vLLM server, and the same load on the llama.cpp backend for comparison.

Run: HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/vllm_gateway.py [--max-tokens 128] [--rounds 2]
(needs `make vllm`; on a GPU machine, `make vllm VLLM_SPEC=vllm` and TUNEFORGE_VLLM_ARGS as you serve).

On the built-in base and two LoRA adapters of it (rank 16 on all projections, random weights so they
really compute): tuneforge starts a managed vLLM server (LoRA enabled), and a client in its own process
streams `/v1/chat/completions` (greedy, EOS ignored, so every run decodes the same tokens) through
tuneforge, then straight to vLLM's own `/v1/chat/completions` with the same messages (vLLM renders the
same chat template). Rounds alternate the two, so drift in a busy machine hits both. Base requests ride
tuneforge's zero adapter (serving/vllm/zero_adapter.py); the straight runs send theirs to the same
adapter name, so both sides do the same work, and one more straight run with the bare base shows what
that workaround costs. Printed: aggregate tokens/s and median time to first token, and the ratios
(goal: tuneforge keeps >= 95% of vLLM's throughput and adds < 10 ms to the median TTFT).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import cpu_name  # noqa: E402
from inference import PROMPTS, _adapter, _say, _serve_app  # noqa: E402

BASE = "smollm2-135m-instruct"
FT_IDS = ["ft:smollm2-135m-instruct:bench:one:00000001", "ft:smollm2-135m-instruct:bench:two:00000002"]
STREAMS = 8


async def _stream(client, model: str, prompt: str, max_tokens: int) -> tuple[float, int]:
    """(time to first token, completion tokens) of one streamed chat."""
    start = time.perf_counter()
    first, tokens = None, 0
    stream = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0,
        stream=True, stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content and first is None:
            first = time.perf_counter() - start
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    return first or 0.0, tokens


async def _load(base_url: str, api_key: str, models: list[str], max_tokens: int) -> dict:
    from openai import AsyncOpenAI

    # Closed inside its loop: the SDK's __del__ would schedule the close on a loop that is gone.
    async with AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=3600) as client:
        await asyncio.gather(*[_stream(client, m, "Hello", 4) for m in set(models)])  # register + warm up
        start = time.perf_counter()
        runs = await asyncio.gather(*[_stream(client, models[i % len(models)], PROMPTS[i % len(PROMPTS)],
                                              max_tokens) for i in range(STREAMS)])
        wall = time.perf_counter() - start
    return {"tps": sum(t for _, t in runs) / wall, "ttft_ms": statistics.median(f for f, _ in runs) * 1000}


def _run_load(*args) -> dict:
    return asyncio.run(_load(*args))


def _measure(pool, base_url: str, api_key: str, models: list[str], max_tokens: int, name: str = "") -> dict:
    """One load from the client process (as a chatbot app runs apart from the server); each result is
    printed as it comes, so a run cut short still says what it measured."""
    row = pool.submit(_run_load, base_url, api_key, models, max_tokens).result()
    if name:
        _say(f"{name}: {row['tps']:.1f} tok/s, median TTFT {row['ttft_ms']:.1f} ms")
    return row


def _mean(rows: list[dict]) -> dict:
    return {k: statistics.mean(r[k] for r in rows) for k in rows[0]}


def _vllm_rows(pool, adapters: dict, max_tokens: int, rounds: int) -> dict:
    from tuneforge.api.app import create_app
    from tuneforge.serving.backends.adapters import adapter_name
    from tuneforge.serving.resolver import static_resolver
    from tuneforge.settings import get_settings

    app = create_app(get_settings(), start_worker=False)
    app.state.engine_options = {"resolvers": [static_resolver(adapters)]}
    url, server = _serve_app(app)
    try:
        _say("starting the managed vLLM server (about a minute on a CPU)")
        _measure(pool, url, "bench", [BASE], 4)
        fleet = app.state.engine.fleets()[f"base:{BASE}"]
        vllm_url, key = fleet.managed.wait_ready(0) + "/v1", fleet.managed.api_key
        zero = fleet.base_adapter[0] if fleet.base_adapter else BASE
        direct_ft = [adapter_name(Path(adapters[m])) for m in FT_IDS]
        _measure(pool, url, "bench", FT_IDS, 4)  # registers the adapters under tuneforge's names
        rows: dict[str, list[dict]] = {}
        for r in range(rounds):
            _say(f"round {r + 1} of {rounds}")
            for name, target, api_key, models in (
                    ("tuneforge -> vLLM, base", url, "bench", [BASE]),
                    ("vLLM direct, base", vllm_url, key, [zero]),
                    ("tuneforge -> vLLM, 2 adapters", url, "bench", FT_IDS),
                    ("vLLM direct, 2 adapters", vllm_url, key, direct_ft)):
                rows.setdefault(name, []).append(_measure(pool, target, api_key, models, max_tokens, name))
        if zero != BASE:
            bare = _measure(pool, vllm_url, key, [BASE], max_tokens, "vLLM direct, bare base")
            rows["vLLM direct, bare base (no zero adapter)"] = [bare]
        return {name: _mean(r) for name, r in rows.items()}
    finally:
        server.should_exit = True
        app.state.engine.close()  # stops the managed server before llama.cpp is measured


def _llamacpp_rows(pool, adapters: dict, max_tokens: int) -> dict:
    import dataclasses

    from tuneforge.api.app import create_app
    from tuneforge.serving.resolver import static_resolver
    from tuneforge.settings import get_settings

    app = create_app(dataclasses.replace(get_settings(), inference_backend="auto"), start_worker=False)
    app.state.engine_options = {"resolvers": [static_resolver(adapters)]}
    url, server = _serve_app(app)
    try:
        _measure(pool, url, "bench", [BASE, *FT_IDS], 4)
        app.state.engine.wait_for_loads()  # the adapters' merged copies
        return {name: _measure(pool, url, "bench", models, max_tokens, name)
                for name, models in (("tuneforge llama.cpp, base", [BASE]),
                                     ("tuneforge llama.cpp, 2 adapters", FT_IDS))}
    finally:
        server.should_exit = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    os.environ["TUNEFORGE_INFERENCE_BACKEND"] = "vllm"
    os.environ.setdefault("TUNEFORGE_HOME", tempfile.mkdtemp(prefix="tuneforge-bench-home-"))
    from tuneforge.models import base_model_folder
    from tuneforge.settings import get_settings

    base_folder = base_model_folder(get_settings().default_base_model)
    work = Path(tempfile.mkdtemp(prefix="tuneforge-bench-"))
    adapters = {m: _adapter(base_folder, work / f"a{i}") for i, m in enumerate(FT_IDS)}
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        rows = _vllm_rows(pool, adapters, args.max_tokens, args.rounds)
        rows.update(_llamacpp_rows(pool, adapters, args.max_tokens))
    print(f"\nvLLM gateway benchmark: {STREAMS} streams x {args.max_tokens} tokens, greedy; {cpu_name()}; "
          f"client in its own process; vLLM rows are the mean of {args.rounds} rounds")
    for name, r in rows.items():
        print(f"  {name:42s} {r['tps']:7.1f} tok/s   median TTFT {r['ttft_ms']:7.1f} ms")
    for kind in ("base", "2 adapters"):
        through, direct = rows[f"tuneforge -> vLLM, {kind}"], rows[f"vLLM direct, {kind}"]
        print(f"  {kind}: tuneforge keeps {through['tps'] / direct['tps'] * 100:.1f}% of vLLM's tokens/s "
              f"(goal >= 95%), adds {through['ttft_ms'] - direct['ttft_ms']:+.1f} ms to the median TTFT "
              f"(goal < 10 ms); llama.cpp backend / vLLM through tuneforge: "
              f"{rows[f'tuneforge llama.cpp, {kind}']['tps'] / through['tps']:.2f}x")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
