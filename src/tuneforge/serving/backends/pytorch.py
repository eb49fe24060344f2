"""The PyTorch backend: a transformers model (a base or a full fine-tune) with PEFT LoRA adapters applied
per row (PEFT's multi-adapter support), and its running batch's KV cache.

Rows join the cache left-padded to a common length and leave between steps. This is what lets the engine
batch continuously: a request that arrives mid-generation is prefilled on its own, then merged into the
running batch at the next step, and finished rows drop out at once.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from tuneforge.serving.backends.adapters import AdapterLRU
from tuneforge.serving.backends.protocol import BASE_ADAPTER
from tuneforge.serving.sampler import stop_token_ids


class TorchModel(AdapterLRU):
    """A transformers model (a base or a full fine-tune) with PEFT adapters applied per row."""

    name = "pytorch"

    def __init__(self, key: str, model, tokenizer, max_adapters: int):
        self.key = key
        self.model = model
        self.tokenizer = tokenizer
        self.max_adapters = max_adapters
        self.adapters: OrderedDict[str, Path] = OrderedDict()  # name -> folder, least recent first
        cfg = model.config
        self.context_length = int(getattr(cfg, "max_position_embeddings", None) or tokenizer.model_max_length)
        self.stop_ids = stop_token_ids(tokenizer, model)
        self.device = next(model.parameters()).device

    def new_batch(self) -> TorchBatch:
        return TorchBatch(self)

    def _load_adapter(self, folder: Path, name: str) -> None:
        from peft import PeftModel

        if not hasattr(self.model, "peft_config"):
            self.model = PeftModel.from_pretrained(self.model, folder, adapter_name=name,
                                                   autocast_adapter_dtype=False)
        else:
            self.model.load_adapter(folder, adapter_name=name, autocast_adapter_dtype=False)
        self.model.eval()
        self._lora_on = None  # new LoRA layers: set every layer's state again at the next forward
        dtype = next(self.model.parameters()).dtype
        for pname, param in self.model.named_parameters():
            if name in pname and param.dtype != dtype:  # keep LoRA in the base dtype: no casts per step
                param.data = param.data.to(dtype)

    def drop_adapter(self, name: str) -> None:
        if name not in self.adapters:
            return
        del self.adapters[name]
        if not self.adapters:  # the last one: take the LoRA layers out, the base runs bare again
            self.model = self.model.unload()
            return
        self.model.delete_adapter(name)
        self._lora_on = None
        self.model.set_adapter(next(iter(self.adapters)))  # PEFT keeps a deleted adapter "active"

    def _lora_enabled(self, enabled: bool) -> None:
        if getattr(self, "_lora_on", None) != enabled:
            if enabled:
                self.model.base_model.enable_adapter_layers()
            else:
                self.model.base_model.disable_adapter_layers()
            self._lora_on = enabled

    def forward(self, input_ids, attention_mask, position_ids, cache, adapter_names, logits_to_keep=1):
        kwargs = {}
        if hasattr(self.model, "peft_config"):
            names = set(adapter_names)
            # Toggling LoRA layers walks every module: do it only when the batch's kind changes.
            self._lora_enabled(names != {BASE_ADAPTER})
            if len(names) == 1 and BASE_ADAPTER not in names:  # one adapter for all rows: plain path
                (name,) = names
                if self.model.active_adapter != name:
                    self.model.set_adapter(name)
            elif len(names) > 1:
                kwargs["adapter_names"] = adapter_names
        with torch.inference_mode():
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             past_key_values=cache, use_cache=True, logits_to_keep=logits_to_keep, **kwargs)
        return out.logits


class KVBatch:
    """The rows' KV caches in one transformers cache, left-padded to a common length."""

    def __init__(self) -> None:
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None  # [B, L] 1 where a real token is cached

    @property
    def size(self) -> int:
        return 0 if self.mask is None else int(self.mask.shape[0])

    def add(self, cache: DynamicCache, mask: torch.Tensor) -> None:
        """Append rows (a freshly prefilled cache and its mask) after the existing ones."""
        if self.cache is None:
            self.cache, self.mask = cache, mask
            return
        length = max(self.mask.shape[1], mask.shape[1])
        layers = []
        for old, new in zip(self.cache.layers, cache.layers, strict=True):
            k = torch.cat([_left_pad(old.keys, length), _left_pad(new.keys, length)], dim=0)
            v = torch.cat([_left_pad(old.values, length), _left_pad(new.values, length)], dim=0)
            layers.append((k, v))
        self.cache = DynamicCache(ddp_cache_data=layers)
        self.mask = torch.cat([_left_pad(self.mask, length, dim=1), _left_pad(mask, length, dim=1)], dim=0)

    def keep(self, rows: list[int]) -> None:
        """Keep only `rows` (in this order); drop columns that are padding in every remaining row."""
        if not rows:
            self.cache, self.mask = None, None
            return
        idx = torch.tensor(rows, dtype=torch.long, device=self.mask.device)
        self.cache.batch_select_indices(idx)
        self.mask = self.mask[idx]
        first = int(self.mask.any(dim=0).to(torch.int8).argmax())
        if first > 0:
            for layer in self.cache.layers:
                layer.keys = layer.keys[:, :, first:]
                layer.values = layer.values[:, :, first:]
            self.mask = self.mask[:, first:]

    def step_mask(self) -> torch.Tensor | None:
        """The attention mask for one more token per row, or None when no row has padding (faster)."""
        self.mask = F.pad(self.mask, (0, 1), value=1)
        return None if bool(self.mask.all()) else self.mask


def _left_pad(t: torch.Tensor, length: int, dim: int = 2) -> torch.Tensor:
    missing = length - t.shape[dim]
    if missing == 0:
        return t
    pad = [0, 0] * (t.dim() - 1 - dim) + [missing, 0]
    return F.pad(t, pad, value=0)


class TorchBatch:
    """A `protocol.Batch`: the running rows of one `TorchModel`, their KV caches joined in one `KVBatch`."""

    def __init__(self, model: TorchModel) -> None:
        self.model = model
        self.kv = KVBatch()

    def prefill(self, prompt_ids: list[int], adapter: str, n_rows: int, all_logits: bool) -> torch.Tensor:
        """Run the prompt once and add `n_rows` rows that continue it. Logits [1 or L, V]."""
        dev = self.model.device
        ids = torch.tensor([prompt_ids], device=dev)
        cache = DynamicCache()
        logits = self.model.forward(ids, None, None, cache, [adapter], logits_to_keep=0 if all_logits else 1)
        if n_rows:
            if n_rows > 1:
                cache.batch_repeat_interleave(n_rows)
            self.kv.add(cache, torch.ones(n_rows, ids.shape[1], dtype=torch.long, device=dev))
        return logits[0].float().cpu()

    def step(self, tokens: list[int], positions: list[int], adapters: list[str]) -> torch.Tensor:
        """One token for every row (in row order). Logits [B, V]."""
        dev = self.model.device
        input_ids = torch.tensor([[t] for t in tokens], device=dev)
        pos = torch.tensor([[p] for p in positions], device=dev)
        logits = self.model.forward(input_ids, self.kv.step_mask(), pos, self.kv.cache, adapters)
        return logits[:, -1, :].float().cpu().clone()  # a normal tensor: the sampler edits it in place

    def keep(self, rows: list[int]) -> None:
        self.kv.keep(rows)

    def free_cells(self) -> None:
        """No fixed KV pool: the cache grows with the rows (None tells the engine not to ration)."""
        return None


__all__ = ["KVBatch", "TorchBatch", "TorchModel"]
