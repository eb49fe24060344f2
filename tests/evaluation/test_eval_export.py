"""Export a tuned adapter: the merged folder and the GGUF file compute what tuneforge's model computes."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tuneforge.models.export import ExportError, export_model
from tuneforge.models.loading import load_local_model

PROMPT = "How long is the warranty?"


def _logits(model, tokenizer) -> torch.Tensor:
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        return model(input_ids=ids).logits[0].float()


@pytest.fixture(scope="module")
def reference(tuned_adapter, settings):
    model, tokenizer, _ = load_local_model(str(tuned_adapter), settings, device="cpu")
    return _logits(model, tokenizer), tokenizer


def test_merged_folder_loads_in_plain_transformers(tuned_adapter, settings, reference, tmp_path):
    out = export_model(str(tuned_adapter), "merged", tmp_path / "merged", settings)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert not any("lora" in name for name, _ in model.named_parameters())
    expected, _ = reference
    got = _logits(model, AutoTokenizer.from_pretrained(out))
    assert torch.allclose(got, expected, atol=1e-4)
    with pytest.raises(ExportError, match="already exists"):
        export_model(str(tuned_adapter), "merged", out, settings)


def test_adapter_export_is_a_peft_folder(tuned_adapter, settings, tmp_path):
    out = export_model(str(tuned_adapter), "adapter", tmp_path / "adapter", settings)
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()


def test_gguf_round_trips_through_transformers_gguf_loader(tuned_adapter, settings, reference, tmp_path):
    out = export_model(str(tuned_adapter), "gguf", tmp_path / "tuned.gguf", settings)
    model = AutoModelForCausalLM.from_pretrained(out.parent, gguf_file=out.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(out.parent, gguf_file=out.name)
    expected, ref_tokenizer = reference
    assert tokenizer(PROMPT)["input_ids"] == ref_tokenizer(PROMPT)["input_ids"]
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False) == \
        ref_tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    # F16 weights: close to, not bit-equal with, the fp32 model; the argmax tokens must agree.
    got = _logits(model, tokenizer)
    assert torch.allclose(got, expected, atol=5e-2)
    assert torch.equal(got.argmax(-1), expected.argmax(-1))
