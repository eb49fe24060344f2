"""The vLLM gateway's own decisions, without a vLLM server: which replica takes a request, which ranks a
managed server is started with, the zero adapter for base requests, and the clear errors when no
server can serve a base."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from testkit import free_port

from tuneforge.serving.params import ServingError
from tuneforge.serving.vllm.fleet import SPREAD, Fleet
from tuneforge.serving.vllm.fleets import open_fleet
from tuneforge.serving.vllm.replica import Replica
from tuneforge.serving.vllm.server import lora_rank_limit
from tuneforge.serving.vllm.zero_adapter import zero_adapter


def _fleet(n: int) -> Fleet:
    replicas = [Replica(f"r{i}", lambda i=i: f"http://127.0.0.1:{9000 + i}", None, 4) for i in range(n)]
    return Fleet("base", "base", replicas, 16, 2048)


def test_requests_go_to_the_least_loaded_replica_that_has_the_adapter():
    fleet = _fleet(3)
    a, b, c = fleet.replicas
    a.in_flight, b.in_flight, c.in_flight = 2, 5, 0
    assert fleet.choose(None) == (c, False)  # the base: any replica, the least loaded
    assert fleet.choose("ad1") == (c, True)  # nobody has it: register it on the least loaded
    b.adapters["ad1"] = a.adapters["ad1"] = None
    assert fleet.choose("ad1") == (a, False)  # the least loaded of those that have it
    a.in_flight = c.in_flight + SPREAD + 1
    b.in_flight = a.in_flight + 1
    assert fleet.choose("ad1") == (c, True)  # those that have it are much busier: it spreads to another


def test_a_restarted_server_forgets_its_adapters():
    generation = [1]
    replica = Replica("r", lambda: "http://127.0.0.1:1", None, 4, generation=lambda: generation[0])
    replica.adapters["ad1"] = None
    assert replica.has("ad1")
    generation[0] = 2
    assert not replica.has("ad1")


def test_lora_ranks_round_up_to_what_vllm_accepts():
    assert [lora_rank_limit(r) for r in (1, 4, 8, 16, 17, 64, 300)] == [1, 8, 8, 16, 32, 64, 320]
    with pytest.raises(ServingError, match="above vLLM's largest"):
        lora_rank_limit(1024)


def test_the_zero_adapter_leaves_the_base_unchanged(tiny_model_dir, settings, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    folder = zero_adapter(tiny_model_dir, tmp_path)
    assert zero_adapter(tiny_model_dir, tmp_path) == folder  # made once
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    ids = torch.tensor([[1, 400, 2000, 30]])
    with torch.no_grad():
        before = base(ids).logits
        after = PeftModel.from_pretrained(base, folder).eval()(ids).logits
    assert torch.equal(before, after)


def test_no_server_for_a_base_is_a_503_that_says_what_to_set(tiny_model, tiny_model_dir, settings):
    s = dataclasses.replace(settings, vllm_managed=False)
    with pytest.raises(ServingError, match="TUNEFORGE_VLLM_URLS") as err:
        open_fleet(tiny_model, tiny_model_dir, None, s)
    assert err.value.status == 503
    with pytest.raises(ServingError, match="a full fine-tune"):
        open_fleet(tiny_model, tiny_model_dir, tiny_model_dir, s)
    down = dataclasses.replace(s, vllm_urls=(f"{tiny_model}=http://127.0.0.1:{free_port()}",))
    with pytest.raises(ServingError, match="does not answer") as err:
        open_fleet(tiny_model, tiny_model_dir, None, down)
    assert err.value.status == 503 and err.value.retry_after


def test_auto_keeps_llamacpp_or_pytorch_on_a_cpu_and_vllm_when_asked(settings):
    from tuneforge.serving.backends.loading import backend_name

    assert backend_name("cpu", None, settings) in ("llama.cpp", "pytorch")
    assert backend_name("cpu", None, dataclasses.replace(settings, inference_backend="vllm")) == "vllm"
    configured = dataclasses.replace(settings, vllm_urls=("b=http://gpu:8000",))
    assert backend_name("cuda", None, configured) == "vllm"
