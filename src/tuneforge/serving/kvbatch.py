"""The running batch's KV cache: rows join (left-padded to a common length) and leave between steps.

This is what lets the engine batch continuously: a request that arrives mid-generation is prefilled on
its own, then merged into the running batch at the next step, and finished rows drop out at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import DynamicCache


class KVBatch:
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
    """The PyTorch backend's running batch of one model: rows' KV caches joined in one `KVBatch`.

    The interface every backend's batch offers the engine (`rows.Running`): `prefill` a prompt for `n`
    new rows, `step` one token for every row, `keep` some rows, and `free_cells` (the KV room left in a
    fixed pool, or None). Logits come back as float32 CPU tensors.
    """

    def __init__(self, loaded) -> None:
        self.loaded = loaded
        self.kv = KVBatch()

    def prefill(self, prompt_ids: list[int], adapter: str, n_rows: int, all_logits: bool) -> torch.Tensor:
        """Run the prompt once and add `n_rows` rows that continue it. Logits [1 or L, V]."""
        from transformers import DynamicCache

        dev = self.loaded.device
        ids = torch.tensor([prompt_ids], device=dev)
        cache = DynamicCache()
        logits = self.loaded.forward(ids, None, None, cache, [adapter], logits_to_keep=0 if all_logits else 1)
        if n_rows:
            if n_rows > 1:
                cache.batch_repeat_interleave(n_rows)
            self.kv.add(cache, torch.ones(n_rows, ids.shape[1], dtype=torch.long, device=dev))
        return logits[0].float().cpu()

    def step(self, tokens: list[int], positions: list[int], adapters: list[str]) -> torch.Tensor:
        """One token for every row (in row order). Logits [B, V]."""
        dev = self.loaded.device
        input_ids = torch.tensor([[t] for t in tokens], device=dev)
        pos = torch.tensor([[p] for p in positions], device=dev)
        logits = self.loaded.forward(input_ids, self.kv.step_mask(), pos, self.kv.cache, adapters)
        return logits[:, -1, :].float().cpu().clone()  # a normal tensor: the sampler edits it in place

    def keep(self, rows: list[int]) -> None:
        self.kv.keep(rows)

    def free_cells(self) -> None:
        """No fixed KV pool: the cache grows with the rows (None tells the engine not to ration)."""
        return None
