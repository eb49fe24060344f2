"""Build the model to train (LoRA or full, fresh or continued) and save it in standard formats.

LoRA adapters are saved with PEFT's own `save_pretrained`, so `peft`, vLLM and others load them
unchanged; full fine-tunes are plain Hugging Face folders. Every saved model folder also gets
`tuneforge_model.json` saying which base it belongs to and how it was trained.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from tuneforge.models.methods import ADAPTER_METHODS
from tuneforge.training.config import ConfigError, TrainConfig

MODEL_META = "tuneforge_model.json"


def read_model_meta(folder: str | Path) -> dict:
    path = Path(folder) / MODEL_META
    if not path.is_file():
        if (Path(folder) / "adapter_config.json").is_file():
            cfg = json.loads((Path(folder) / "adapter_config.json").read_text("utf-8"))
            return {"base_model": cfg.get("base_model_name_or_path"), "method": "lora"}
        if (Path(folder) / "config.json").is_file():
            return {"base_model": str(folder), "method": "full"}
        raise ConfigError(f"init_from: {folder} is not a fine-tuned model folder (no {MODEL_META}, "
                          "adapter_config.json or config.json). Point it at a job's final/ or a checkpoint.")
    return json.loads(path.read_text("utf-8"))


def _weights_folder(source: str, settings) -> Path:
    from tuneforge.models import base_model_folder

    return Path(source) if (Path(source) / "config.json").is_file() else base_model_folder(source, settings)


def _load_causal_lm(source: str, settings):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(_weights_folder(source, settings), dtype=torch.float32)


def architecture(config: TrainConfig, settings):
    """The Hugging Face config of the model `build_model` will load (its architecture and widths)."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(_weights_folder(_weights_source(config), settings))


def _weights_source(config: TrainConfig) -> str:
    """Where the weights `build_model` starts from: a full fine-tune continued, else the base."""
    init = read_model_meta(config.init_from) if config.init_from else None
    return config.init_from if init and init.get("method") == "full" else config.base_model


def _load_quantized(source: str, settings, device: str, bf16: bool):
    """QLoRA's base: the causal LM with its linear layers in 4-bit NF4 (double-quantized) through
    bitsandbytes, computing in bf16 or fp32, and prepared for adapter training (norms in fp32, input
    gradients on) as PEFT prescribes."""
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise ConfigError("method 'qlora' needs bitsandbytes: pip install 'tuneforge[qlora]'.") from exc
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                      bnb_4bit_use_double_quant=True,
                                      bnb_4bit_compute_dtype=torch.bfloat16 if bf16 else torch.float32)
    model = AutoModelForCausalLM.from_pretrained(_weights_folder(source, settings), dtype=torch.float32,
                                                 quantization_config=quantization, device_map={"": device})
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)


def build_model(config: TrainConfig, settings, device: str, bf16: bool = False):
    """The trainable model: a PeftModel (method lora, or qlora on a 4-bit base) or the causal LM itself
    (method full)."""
    from peft import LoraConfig, PeftModel, get_peft_model

    init = read_model_meta(config.init_from) if config.init_from else None
    source = _weights_source(config)
    if config.method == "qlora":
        model = _load_quantized(source, settings, device, bf16)
    else:
        model = _load_causal_lm(source, settings)
    if init and init.get("method") in ADAPTER_METHODS:
        # Continue the existing adapter: the same LoRA weights are trained further, not a new one stacked.
        trainable = config.method in ADAPTER_METHODS
        model = PeftModel.from_pretrained(model, config.init_from, is_trainable=trainable)
        if config.method == "full":
            model = model.merge_and_unload()
    elif config.method in ADAPTER_METHODS:
        lora = config.lora
        present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        missing = [t for t in lora.target_modules if t not in present]
        if missing:
            raise ConfigError(f"lora.target_modules: {missing} not found in this model; it has e.g. "
                              f"{sorted(p for p in present if p.endswith('proj'))[:10]}.")
        model = get_peft_model(model, LoraConfig(
            r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules), task_type="CAUSAL_LM", bias="none"))
    if config.method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
    model.config.use_cache = False
    if config.gradient_checkpointing:  # non-reentrant: works with frozen inputs (LoRA) and FSDP2
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model if config.method == "qlora" else model.to(device)  # a 4-bit model is placed as loaded


def causal_lm_parts(model):
    """(decoder, lm_head, softcap) of a causal LM or a PeftModel wrapping one."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    softcap = getattr(inner.config, "final_logit_softcapping", None)
    return inner.get_decoder(), inner.get_output_embeddings(), softcap


def save_model(model, folder: Path, config: TrainConfig, tokenizer, extra: dict | None = None,
               state_dict: dict | None = None) -> Path:
    """Write the model to `folder` atomically (temp folder, then rename); `state_dict`: the weights to write
    when the model's own are sharded."""
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if state_dict is None:
        model.save_pretrained(tmp)
    else:
        model.save_pretrained(tmp, state_dict=state_dict)
    base = config.base_model
    if config.init_from:
        base = read_model_meta(config.init_from).get("base_model") or base
    if config.method == "full":
        tokenizer.save_pretrained(tmp)
    meta = {"base_model": base, "method": config.method, **(extra or {})}
    (tmp / MODEL_META).write_text(json.dumps(meta, indent=2), "utf-8")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder


def freeze_linears_to_bf16(model) -> int:
    """Store frozen linear weights in bf16 (LoRA under bf16 autocast): autocast would cast them to bf16
    for every matmul anyway, so results are identical, but without re-casting 135M weights each step,
    which on a CPU with ~100-token steps costs more than the matmuls. Norms and embeddings stay fp32."""
    n = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and not module.weight.requires_grad \
                and module is not causal_lm_parts(model)[1]:
            module.weight.data = module.weight.data.to(torch.bfloat16)
            n += 1
    return n


def trainable_parameters(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]
