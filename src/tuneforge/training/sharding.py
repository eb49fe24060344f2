"""FSDP2 (`torch.distributed.fsdp.fully_shard`) for full fine-tunes over several ranks: each rank keeps
1/N of every weight, gradient and optimizer state, so a model whose full training state does not fit one
device trains on N of them.

Each decoder layer is its own unit (gathered for its forward and backward, then freed); the root unit is
training/step.py's `TrainedPositionsLM` and holds the embeddings, the final norm and the head (tied to
the embeddings in many small models, which FSDP2 allows only inside one unit). Checkpoints hold full,
unsharded tensors in the usual files (a Hugging Face folder and `training_state.pt`, with the optimizer
state keyed by parameter name), gathered on rank 0, so a sharded run's checkpoint and final model are the
same files a one-process run writes; every rank loads them back and keeps its own shard.
"""

from __future__ import annotations

import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

from tuneforge.training.distributed import Ranks
from tuneforge.training.step import TrainedPositionsLM

PREFIX = "model."  # the causal LM's parameter names inside TrainedPositionsLM
OPTIMIZER_FORMAT = "by_name"  # training_state.pt's optimizer state, keyed by parameter name (full tensors)
_GATHER = StateDictOptions(full_state_dict=True, cpu_offload=True)  # whole tensors, on rank 0 only
_LOAD = StateDictOptions(full_state_dict=True, strict=False)


def decoder_layers(model) -> list[torch.nn.Module]:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    layers = getattr(inner.get_decoder(), "layers", None)
    if layers is None:
        raise ValueError(f"{type(inner).__name__}: no decoder layers found to shard")
    return list(layers)


def shard(model, ranks: Ranks, device: str) -> TrainedPositionsLM:
    """The model (built on the CPU, the same on every rank) sharded over the ranks, on `device`."""
    mesh = init_device_mesh("cuda" if device.startswith("cuda") else "cpu", (ranks.size,))
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh)
    root = TrainedPositionsLM(model)
    fully_shard(root, mesh=mesh)
    return root


def full_model_state(root: TrainedPositionsLM) -> dict[str, torch.Tensor]:
    """Every weight, whole, on rank 0 ({} on the others); every rank must call it (it is a collective)."""
    state = get_model_state_dict(root, options=_GATHER)
    state = {k[len(PREFIX):] if k.startswith(PREFIX) else k: v for k, v in state.items()}
    return {k: v for k, v in state.items() if k not in tied_copies(root.model)}


def tied_copies(model) -> set[str]:
    """Names of parameters that are another's (a head tied to the embeddings): saved once, as a
    one-process run's `save_pretrained` saves them."""
    first: dict[int, str] = {}
    copies = set()
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in first:
            copies.add(name)
        else:
            first[id(param)] = name
    return copies


def full_optimizer_state(root: TrainedPositionsLM, optimizer) -> dict:
    return get_optimizer_state_dict(root, optimizer, options=_GATHER)


def load_model_state(root: TrainedPositionsLM, state: dict[str, torch.Tensor]) -> None:
    set_model_state_dict(root, {PREFIX + k: v for k, v in state.items()}, options=_LOAD)


def load_optimizer_state(root: TrainedPositionsLM, optimizer, state: dict) -> None:
    set_optimizer_state_dict(root, optimizer, state, options=StateDictOptions(full_state_dict=True))
