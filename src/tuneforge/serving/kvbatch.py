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
