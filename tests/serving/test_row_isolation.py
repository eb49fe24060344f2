"""A request whose JSON constraint breaks mid-generation ends alone: the other requests decoding in the
same batch finish normally."""

from __future__ import annotations

import asyncio

import pytest
from lmformatenforcer.characterlevelparser import CharacterLevelParser
from lmformatenforcer.exceptions import LMFormatEnforcerException

from tuneforge.serving.engine import InferenceEngine
from tuneforge.serving.params import Delta, Finished, GenerationRequest, SamplingParams, ServingError


class BreaksAfter(CharacterLevelParser):
    """A parser for the real enforcer that accepts a few characters, then fails the way the enforcer's
    schema parser does when it reaches a construct it cannot follow."""

    def __init__(self, left: int):
        super().__init__()
        self.left = left

    def add_character(self, new_character: str) -> CharacterLevelParser:
        return BreaksAfter(self.left - 1)

    def get_allowed_characters(self) -> str:
        if self.left <= 0:
            raise LMFormatEnforcerException("schema state broke")
        return "abcdefghijklmnopqrstuvwxyz "

    def can_end(self) -> bool:
        return False


@pytest.fixture
def engine(settings, tiny_model):
    eng = InferenceEngine(settings)
    yield eng
    eng.close()


async def _run(engine, params: SamplingParams, n: int = 1):
    prepared = await engine.prepare("tiny-llama")
    ids = prepared.backend.tokenizer.encode("The refund policy is")
    handle = engine.submit(prepared, GenerationRequest("tiny-llama", ids, params, n=n))
    finished = []
    try:
        async for event in handle.events():
            if isinstance(event, Finished):
                finished.append(event.finish_reason)
            assert isinstance(event, Delta | Finished)
    except ServingError as exc:
        return exc
    return finished


def test_a_failing_row_ends_only_its_own_request(engine):
    async def main():
        healthy = [asyncio.create_task(_run(engine, SamplingParams(max_tokens=40, temperature=0), n=2))
                   for _ in range(2)]
        await asyncio.sleep(0)  # the healthy ones are decoding when the broken one joins
        broken = SamplingParams(max_tokens=40, temperature=0, json_mode=True, json_parser=BreaksAfter(12))
        failed = await _run(engine, broken, n=2)
        return failed, await asyncio.gather(*healthy)

    failed, healthy = asyncio.run(main())
    assert isinstance(failed, ServingError) and "schema state broke" in failed.message
    assert healthy == [["length", "length"], ["length", "length"]]
    assert engine.stats()["open_requests"] == 0
