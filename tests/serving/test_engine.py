"""The engine on the tiny model: batching is exact, adapters apply per row, the LRU is bounded, unload
frees, the queue is bounded and a closed request frees its slot."""

from __future__ import annotations

import asyncio

import pytest
from servekit import FT2_ID, FT_ID, FULL_ID
from testkit import wait_for

from tuneforge.serving.engine import InferenceEngine
from tuneforge.serving.params import Delta, Finished, GenerationRequest, QueueFull, SamplingParams
from tuneforge.serving.resolver import static_resolver


@pytest.fixture
def engine(settings, tiny_model, model_folders):
    eng = InferenceEngine(settings, resolvers=[static_resolver(model_folders)], max_adapters=1,
                          max_queued=6)
    yield eng
    eng.close()


async def _generate(engine, model: str, prompt: str, max_tokens: int = 12, **kw) -> tuple[str, str, int]:
    prepared = await engine.prepare(model)
    ids = prepared.backend.tokenizer.encode(prompt)
    params = SamplingParams(max_tokens=max_tokens, temperature=0, **kw)
    handle = engine.submit(prepared, GenerationRequest(model, ids, params))
    text, reason, count = "", "", 0
    async for event in handle.events():
        if isinstance(event, Delta):
            text += event.text
        elif isinstance(event, Finished):
            reason, count = event.finish_reason, event.completion_tokens
    return text, reason, count


PROMPTS = ["The refund policy is", "Hello there, my order", "Shipping to Canada takes", "A"]


def test_concurrent_requests_are_batched_and_match_single_runs(engine):
    async def main():
        alone = [await _generate(engine, "tiny-llama", p) for p in PROMPTS]
        together = await asyncio.gather(*[_generate(engine, "tiny-llama", p) for p in PROMPTS])
        return alone, together

    alone, together = asyncio.run(main())
    assert together == alone  # left padding and joining mid-flight change nothing
    assert all(reason == "length" and count == 12 for _, reason, count in alone)
    assert max(engine.stats()["peak_batch_rows"].values()) >= 2


def test_adapters_apply_per_row_in_a_mixed_batch(engine):
    async def main():
        alone = [await _generate(engine, m, "Tell me about refunds") for m in ("tiny-llama", FT_ID)]
        mixed = await asyncio.gather(*[_generate(engine, m, "Tell me about refunds")
                                       for m in ("tiny-llama", FT_ID, "tiny-llama", FT_ID)])
        again = [await _generate(engine, m, "Tell me about refunds") for m in ("tiny-llama", FT_ID)]
        return alone, mixed, again

    (base, tuned), mixed, again = asyncio.run(main())
    assert base[0] != tuned[0]  # the adapter changes the output
    assert mixed == [base, tuned, base, tuned]
    assert again == [base, tuned]  # base alone with an adapter loaded: the LoRA layers are off
    assert len(engine.loaded()) == 1  # one copy of the base serves both


def test_adapter_lru_is_bounded_and_unload_frees(engine, adapter_dir, adapter2_dir):
    asyncio.run(_generate(engine, FT_ID, "hi", max_tokens=2))
    asyncio.run(_generate(engine, FT2_ID, "hi", max_tokens=2))
    assert engine.loaded()["base:tiny-llama"] == [str(adapter2_dir)]  # max_adapters=1: the first left
    assert engine.unload(FT2_ID)
    wait_for(lambda: engine.loaded()["base:tiny-llama"] == [], what="unloading the adapter")


def test_full_fine_tune_loads_its_own_weights_and_unloads(engine):
    asyncio.run(_generate(engine, FULL_ID, "hi", max_tokens=3))
    keys = list(engine.loaded())
    assert any(k.startswith("full:") for k in keys)
    engine.unload(FULL_ID)
    wait_for(lambda: not any(k.startswith("full:") for k in engine.loaded()), what="unloading the weights")


def test_queue_limit_and_closing_frees_the_slot(engine):
    async def main():
        prepared = await engine.prepare("tiny-llama")
        ids = prepared.backend.tokenizer.encode("hello")
        request = GenerationRequest("tiny-llama", ids, SamplingParams(max_tokens=2000, ignore_eos=True))
        handles = [engine.submit(prepared, request) for _ in range(6)]
        with pytest.raises(QueueFull) as err:
            engine.submit(prepared, request)
        assert err.value.status == 429 and err.value.retry_after >= 1
        handles[0].close()  # e.g. the client went away
        handles.append(engine.submit(prepared, request))  # the slot is free at once
        for h in handles:
            h.close()

    asyncio.run(main())
    assert engine.stats()["open_requests"] == 0
    wait_for(lambda: sum(engine.stats()["running_rows"].values()) == 0,
               what="the engine dropping the abandoned rows")
