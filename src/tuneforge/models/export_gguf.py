"""GGUF export of Llama-architecture models (the built-in SmolLM2 family) with the `gguf` package's writer.

Follows llama.cpp's `convert_hf_to_gguf.py` for LLaMA: the same metadata keys and tensor names, q/k
projections permuted back to llama.cpp's rotary layout, 2-D weights in F16 and norms in F32, the
tokenizer as a GPT-2 style BPE vocabulary with its merges, special ids and chat template. Other
architectures get a clear message pointing at `--format merged` plus llama.cpp's own converter.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from tuneforge.models.export import ExportError, check_target, export_merged
from tuneforge.settings import Settings, get_settings


def _permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """HF stores rotary halves split; llama.cpp expects them interleaved (convert_hf_to_gguf's permute)."""
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _rope_theta(config) -> float:
    params = getattr(config, "rope_parameters", None) or {}
    return float(params.get("rope_theta") or getattr(config, "rope_theta", None) or 10000.0)


def _add_tokenizer(writer, folder: Path, n_vocab: int) -> None:
    import gguf
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    vocab = tokenizer.get_vocab()
    by_id = {i: t for t, i in vocab.items()}
    added = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for i in range(n_vocab):
        if i not in by_id:  # padded embedding rows have no token
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        tokens.append(by_id[i])
        special = i in added and added[i].special
        types.append(gguf.TokenType.CONTROL if special else
                     gguf.TokenType.USER_DEFINED if i in added else gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    # llama.cpp picks the pre-tokenizer regex by name; SmolLM2's vocabulary is registered as "smollm".
    smollm = by_id.get(1) == "<|im_start|>" and len(vocab) == 49152
    writer.add_tokenizer_pre("smollm" if smollm else "default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    gguf.SpecialVocab(folder, load_merges=True, n_vocab=n_vocab).add_to_gguf(writer, quiet=True)


def convert_folder(folder: Path, output: Path, name: str) -> Path:
    """Write the Llama model in HF `folder` to the GGUF file `output`."""
    import gguf
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder)
    if config.model_type != "llama":
        raise ExportError(f"GGUF export supports Llama-architecture models, not {config.model_type!r}; use "
                          "--format merged and llama.cpp's convert_hf_to_gguf.py on that folder")
    n_head, n_kv = config.num_attention_heads, config.num_key_value_heads or config.num_attention_heads
    state = {}
    for shard in sorted(folder.glob("*.safetensors")):
        state.update(load_file(shard))
    writer = gguf.GGUFWriter(str(output), "llama")
    writer.add_name(name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_dimension_count(getattr(config, "head_dim", None) or config.hidden_size // n_head)
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    _add_tokenizer(writer, folder, config.vocab_size)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    for key, tensor in state.items():
        if key == "lm_head.weight" and config.tie_word_embeddings:
            continue  # llama.cpp reuses token_embd when output.weight is absent
        data = tensor.to(torch.float32).numpy()
        if key.endswith("q_proj.weight"):
            data = _permute(data, n_head)
        elif key.endswith("k_proj.weight"):
            data = _permute(data, n_kv)
        target = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise ExportError(f"GGUF export: no llama.cpp name for tensor {key!r}; use --format merged")
        writer.add_tensor(target, data.astype(np.float16) if data.ndim == 2 else data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return output


def export_gguf(model_id: str, output: Path, settings: Settings | None = None,
                overwrite: bool = False) -> Path:
    """Merge the model's adapter into its base, then convert the merged folder to one .gguf file."""
    settings = settings or get_settings()
    if output.suffix != ".gguf":
        output = output / "model.gguf" if output.is_dir() else output.with_suffix(".gguf")
    check_target(output, overwrite)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tuneforge-gguf-") as tmp:
        merged = export_merged(model_id, Path(tmp) / "merged", settings, overwrite=True)
        return convert_folder(merged, output, name=model_id)


LORA_DTYPE = np.float32


class UnsupportedAdapter(ExportError):
    """The adapter uses a PEFT feature llama.cpp's LoRA format cannot express (DoRA, saved modules...)."""


def convert_lora(adapter_folder: Path, base_folder: Path, output: Path) -> Path:
    """Write the PEFT LoRA adapter in `adapter_folder` (trained on the Llama base in `base_folder`) as a
    llama.cpp LoRA adapter GGUF, as llama.cpp's convert_lora_to_gguf.py does: lora_a/lora_b per
    projection, lora_b of q/k permuted like their base weights, alpha stored so that alpha / rank is
    PEFT's scale."""
    import json
    import math

    import gguf
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(base_folder)
    adapter_cfg = json.loads((adapter_folder / "adapter_config.json").read_text("utf-8"))
    if config.model_type != "llama":
        raise UnsupportedAdapter(f"llama.cpp LoRA export supports Llama-architecture bases, not "
                                 f"{config.model_type!r}")
    for feature in ("use_dora", "modules_to_save", "rank_pattern", "alpha_pattern", "layers_to_transform"):
        if adapter_cfg.get(feature):
            raise UnsupportedAdapter(f"{adapter_folder}: `{feature}` adapters have no llama.cpp LoRA form")
    if adapter_cfg.get("bias", "none") != "none":
        raise UnsupportedAdapter(f"{adapter_folder}: LoRA bias terms have no llama.cpp LoRA form")
    rank, alpha = int(adapter_cfg["r"]), float(adapter_cfg["lora_alpha"])
    if adapter_cfg.get("use_rslora"):
        alpha = alpha * math.sqrt(rank)  # rsLoRA scales by alpha / sqrt(r); llama.cpp by alpha / r
    n_head, n_kv = config.num_attention_heads, config.num_key_value_heads or config.num_attention_heads
    state = load_file(adapter_folder / "adapter_model.safetensors")
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    writer = gguf.GGUFWriter(str(output), "llama")
    writer.add_string(gguf.Keys.General.TYPE, gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    for key in sorted(state):
        if ".lora_A." not in key:
            if ".lora_B." not in key:
                raise UnsupportedAdapter(f"{adapter_folder}: tensor {key!r} is not a LoRA A/B matrix")
            continue
        module = key.split(".lora_A.")[0].removeprefix("base_model.model.")
        a = state[key].to(torch.float32).numpy()
        b = state[key.replace(".lora_A.", ".lora_B.")].to(torch.float32).numpy()
        if module.endswith("q_proj"):
            b = _permute(b, n_head)
        elif module.endswith("k_proj"):
            b = _permute(b, n_kv)
        target = names.get_name(module + ".weight", try_suffixes=(".weight",))
        if target is None or (module.endswith("lm_head") and config.tie_word_embeddings):
            raise UnsupportedAdapter(f"{adapter_folder}: no llama.cpp LoRA target for module {module!r}")
        writer.add_tensor(f"{target}.lora_a", a.astype(LORA_DTYPE))
        writer.add_tensor(f"{target}.lora_b", b.astype(LORA_DTYPE))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return output
