"""How a run's ranks share the model: the one place that differs between one process, replicated ranks
(LoRA: each rank holds the whole model, gradients summed, training/distributed.py) and sharded ranks (full
fine-tunes over several ranks: FSDP2, training/sharding.py). The training loop (run.py) asks this object
and never checks which layout it has."""

from __future__ import annotations

from pathlib import Path

import torch

from tuneforge.training import distributed as dist
from tuneforge.training.dataset import PackedRow
from tuneforge.training.model import build_model, trainable_parameters


class Layout:
    def __init__(self, ranks: dist.Ranks, method: str):
        self.ranks = ranks
        self.sharded = ranks.distributed and method == "full"

    @property
    def name(self) -> str:
        if self.sharded:
            return "sharded (FSDP2)"
        return "replicated" if self.ranks.distributed else "one process"

    def build(self, config, settings, device: str, bf16: bool = False):
        """The model to train, the same on every rank: sharded ones are built on the CPU and each rank then
        keeps its shard on `device`."""
        if not self.sharded:
            return build_model(config, settings, device, bf16)
        from tuneforge.training import sharding

        return sharding.shard(build_model(config, settings, "cpu"), self.ranks, device)

    def after_build(self, model) -> None:
        if not self.sharded:  # replicas start from rank 0's weights; shards were cut from the same ones
            dist.broadcast_parameters(self.ranks, trainable_parameters(model))

    @property
    def loss_scale(self) -> int:
        """FSDP2 averages the ranks' gradients (gloo has no pre-scaled sum to tell it otherwise); the loss is
        already divided by the global batch's trained tokens, so a sharded rank's loss is multiplied by
        the number of ranks, and the average is then the sum, as replicated ranks compute it."""
        return self.ranks.size if self.sharded else 1

    def after_backward(self, model) -> None:
        if not self.sharded:  # FSDP2 reduce-scatters the gradients itself during backward
            dist.sum_gradients(self.ranks, trainable_parameters(model))

    def padding(self, rows: list[PackedRow], filler: list[PackedRow]) -> list[PackedRow]:
        """Rows to run with no weight so every rank makes as many forward passes as the busiest one: each
        pass of a sharded model is a collective, and a rank that skips one would leave the others waiting."""
        if not self.sharded:
            return []
        return filler[:1] * (dist.max_int(self.ranks, len(rows)) - len(rows))

    def inner(self, model):
        """The causal LM (or PeftModel) itself, for saving."""
        return model.model if self.sharded else model

    def model_state(self, model) -> dict[str, torch.Tensor] | None:
        """Whole weights to save (None: the model saves its own). A collective when sharded."""
        if not self.sharded:
            return None
        from tuneforge.training import sharding

        return sharding.full_model_state(model)

    def optimizer_state(self, model, optimizer) -> tuple[dict, str | None]:
        """(the optimizer state to save, its format); a collective when sharded."""
        if not self.sharded:
            return optimizer.state_dict(), None
        from tuneforge.training import sharding

        return sharding.full_optimizer_state(model, optimizer), sharding.OPTIMIZER_FORMAT

    def load(self, model, optimizer, folder: Path, state: dict, method: str) -> None:
        """Put a checkpoint's weights and optimizer state into this rank's model and optimizer."""
        from tuneforge.training import checkpoint as ckpt

        if not self.sharded:
            ckpt.load_model_weights(model, folder, method)
            if state.get("optimizer_format"):
                raise ValueError("its optimizer state was saved by a sharded run; resume with as many ranks")
            optimizer.load_state_dict(state["optimizer"])
            return
        from tuneforge.training import sharding

        sharding.load_model_state(model, ckpt.read_full_weights(folder))
        if state.get("optimizer_format") != sharding.OPTIMIZER_FORMAT:
            raise ValueError("its optimizer state was saved by one process; resume it in one process")
        sharding.load_optimizer_state(model, optimizer, state["optimizer"])
