"""Forward/backward for packed rows: loss and accuracy only on the positions that are trained.

The vocabulary projection is the costliest layer of a small model (49k outputs for SmolLM2), so it runs
only on positions whose next token carries loss, not on every prompt token; the cross-entropy is computed
in fp32 even under bf16 autocast.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tuneforge.data.encode import IGNORE
from tuneforge.training.dataset import PackedRow
from tuneforge.training.model import causal_lm_parts


@dataclass
class StepStats:
    loss_sum: float = 0.0  # sum of (weighted) per-token losses
    weight_sum: float = 0.0
    n_tokens: int = 0  # trained target tokens
    n_correct: int = 0
    n_seqs: int = 0
    n_seqs_correct: int = 0
    n_input_tokens: int = 0

    @classmethod
    def total(cls, parts) -> StepStats:
        """The stats of several disjoint sets of examples as one (every field is a sum)."""
        names = [f.name for f in dataclasses.fields(cls)]
        parts = list(parts)
        return cls(**{n: sum(getattr(p, n) for p in parts) for n in names})

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.weight_sum, 1e-12)

    @property
    def token_accuracy(self) -> float:
        return self.n_correct / max(self.n_tokens, 1)

    @property
    def sequence_accuracy(self) -> float:
        return self.n_seqs_correct / max(self.n_seqs, 1)


def autocast_context(device: str, enabled: bool):
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)


def _head(lm_head, hidden: torch.Tensor, bf16: bool) -> torch.Tensor:
    """The vocabulary projection. A frozen head (tied to the embeddings under LoRA) keeps one bf16 copy
    instead of autocast re-casting its 28M weights every step."""
    if not bf16 or lm_head.weight.requires_grad or lm_head.weight.device.type != "cpu":
        return lm_head(hidden)
    cached = getattr(lm_head, "_tuneforge_bf16", None)
    if cached is None or cached[0] != lm_head.weight._version:
        cached = (lm_head.weight._version, lm_head.weight.detach().to(torch.bfloat16))
        lm_head._tuneforge_bf16 = cached
    return F.linear(hidden.to(torch.bfloat16), cached[1])


class TrainedPositionsLM(torch.nn.Module):
    """The causal LM's training forward: the decoder, then the vocabulary head on the `keep` positions only.

    A module of its own (not two calls from outside) so that FSDP2 can make it the root of a sharded model
    and its hooks gather the embeddings and the head around this forward (training/sharding.py)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, position_ids, keep, bf16: bool) -> torch.Tensor:
        decoder, lm_head, softcap = causal_lm_parts(self.model)
        with autocast_context(input_ids.device.type, bf16):
            out = decoder(input_ids=input_ids, position_ids=position_ids, use_cache=False)
            hidden = out.last_hidden_state[0]
            logits = _head(lm_head, hidden.index_select(0, keep), bf16)
        logits = logits.float()
        return torch.tanh(logits / softcap) * softcap if softcap else logits


def trained_positions(model) -> TrainedPositionsLM:
    return model if isinstance(model, TrainedPositionsLM) else TrainedPositionsLM(model)


def row_loss(model, row: PackedRow, device: str, bf16: bool, stats: StepStats) -> torch.Tensor:
    """Sum of per-token losses of one packed row (the caller divides by the batch's total weight)."""
    targets = row.targets.to(device)
    keep = torch.nonzero(targets != IGNORE).flatten()
    logits = trained_positions(model)(row.input_ids.to(device), row.position_ids.to(device), keep, bf16)
    picked = targets.index_select(0, keep)
    per_token = F.cross_entropy(logits, picked, reduction="none")
    if row.weights is not None:
        w = row.weights.to(device).index_select(0, keep)
        loss_sum, weight_sum = (per_token * w).sum(), float(w.sum())
    else:
        loss_sum, weight_sum = per_token.sum(), float(keep.numel())
    with torch.no_grad():
        correct = torch.zeros_like(targets, dtype=torch.bool)
        correct[keep] = logits.argmax(-1) == picked
        stats.loss_sum += float(loss_sum.detach())
        stats.weight_sum += weight_sum
        stats.n_tokens += int(keep.numel())
        stats.n_correct += int(correct.sum())
        stats.n_seqs += row.n_examples
        stats.n_seqs_correct += sum(int(bool(correct[pos].all())) for pos in row.seq_correct)
        stats.n_input_tokens += int(row.input_ids.numel())
    return loss_sum


def total_weight(rows: list[PackedRow]) -> float:
    """The normaliser of a batch's loss: its trained tokens (or their weights with prompt_loss_weight)."""
    total = 0.0
    for row in rows:
        if row.weights is not None:
            total += float(row.weights[row.targets != IGNORE].sum())
        else:
            total += int((row.targets != IGNORE).sum())
    return max(total, 1e-12)


def train_batch(model, rows: list[PackedRow], device: str, bf16: bool, norm: float | None = None,
                padding: list[PackedRow] = ()) -> StepStats:
    """Forward and backward over a batch (gradients accumulated across rows), returning its stats. `norm`
    (default: this batch's own trained tokens) divides the loss: data parallel passes the global batch's.
    `padding` rows run forward and backward with no weight and are not counted (training/parallel.py)."""
    stats = StepStats()
    norm = norm if norm is not None else total_weight(rows)
    for row in rows:
        loss = row_loss(model, row, device, bf16, stats) / norm
        loss.backward()
    for row in padding:
        (row_loss(model, row, device, bf16, StepStats()) * 0.0).backward()
    return stats


@torch.no_grad()
def eval_rows(model, rows: list[PackedRow], device: str, bf16: bool,
              padding: list[PackedRow] = ()) -> StepStats:
    stats = StepStats()
    for row in rows:
        row_loss(model, row, device, bf16, stats)
    for row in padding:
        row_loss(model, row, device, bf16, StepStats())
    return stats
