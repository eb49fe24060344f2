"""Data-parallel training across processes started by torchrun (`torch.distributed.run`): the process
group and the collectives every layout uses (training/parallel.py).

Every rank takes its share of each global batch; after the backward pass the gradients are summed over
ranks (here for replicated ranks, which hold the whole model; by FSDP2 for sharded ones), so every rank
makes the same optimizer step and the run is one training run, the same as in one process with the same
global batch and seed (only the order of float additions differs). The loss is normalised by the trained
tokens of the *global* batch, so the summed gradient is exactly the one-process gradient.

Why not `DistributedDataParallel`: the loop calls the decoder and the vocabulary head itself (the head
runs only on trained positions, training/step.py), and DDP's reducer needs the wrapper's own forward. One
flat all-reduce of the trainable gradients per step is what DDP's buckets do, with nothing hidden.

Rank 0 alone writes results, checkpoints and events; every rank reads the same checkpoint on resume.
A lost rank makes a collective fail on the others; `RankLost` says so, and the job retries from its
last checkpoint (jobs/runner.py).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, fields

import torch
import torch.distributed as dist

from tuneforge.lifetime import die_with_parent

# A collective that waits longer than this for a peer means the peer is gone (a step on a big model is
# minutes at most; the default of 30 minutes would hold a dead attempt's ranks that long).
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=10)


class RankLost(RuntimeError):
    """Another rank of this run stopped (killed, crashed or out of memory): this attempt cannot go on."""


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def launched_by_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def die_with_launcher() -> None:
    """torchrun starts each rank in its own session: without this, a killed torchrun would leave its ranks
    training (and writing checkpoints) as orphans."""
    die_with_parent()
    if os.getppid() == 1:  # the launcher died before the line above
        os._exit(1)


def init_ranks() -> Ranks:
    """This process's place in the run: joins torchrun's process group, or one rank alone."""
    if not launched_by_torchrun():
        return Ranks()
    die_with_launcher()
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    local_rank = int(os.environ["LOCAL_RANK"])
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, timeout=COLLECTIVE_TIMEOUT)
    return Ranks(dist.get_rank(), dist.get_world_size(), local_rank)


def close(ranks: Ranks) -> None:
    if ranks.distributed and dist.is_initialized():
        dist.destroy_process_group()


def device_for(ranks: Ranks) -> str:
    if torch.cuda.is_available():
        return f"cuda:{ranks.local_rank}" if ranks.distributed else "cuda"
    return "cpu"


def shard(items: list, ranks: Ranks) -> list:
    """This rank's share of a global batch: every size-th item from its rank (sizes differ by at most 1)."""
    return items[ranks.rank::ranks.size]


# What gloo and NCCL say when the other end of a collective has gone away.
_PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "NCCL communicator",
              "Timed out", "timed out")


def peer_lost(exc: BaseException) -> bool:
    """Whether `exc` (raised in a collective, ours or FSDP2's) means another rank is gone."""
    return isinstance(exc, RankLost | dist.DistError) or (
        isinstance(exc, RuntimeError) and any(s in str(exc) for s in _PEER_GONE))


def _collective(fn):
    """Run one collective; a peer that is gone turns into RankLost."""
    try:
        return fn()
    except (RuntimeError, dist.DistError) as exc:  # gloo and NCCL raise these when a peer disappears
        raise RankLost(f"another training process stopped ({type(exc).__name__}: {str(exc)[:160]})") from exc


def sum_floats(ranks: Ranks, values: list[float]) -> list[float]:
    if not ranks.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    _collective(lambda: dist.all_reduce(t))
    return t.tolist()


def max_int(ranks: Ranks, value: int) -> int:
    if not ranks.distributed:
        return value
    t = torch.tensor([value], dtype=torch.int64)
    _collective(lambda: dist.all_reduce(t, op=dist.ReduceOp.MAX))
    return int(t.item())


def any_rank(ranks: Ranks, flag: bool) -> bool:
    """True on every rank when it is true on one (a stop request agreed on, so all stop at one step)."""
    return sum_floats(ranks, [1.0 if flag else 0.0])[0] > 0 if ranks.distributed else flag


def sum_stats(ranks: Ranks, stats):
    """A StepStats (or any dataclass of numbers) summed over ranks, with each field's type kept."""
    if not ranks.distributed:
        return stats
    names = [f.name for f in fields(stats)]
    summed = sum_floats(ranks, [float(getattr(stats, n)) for n in names])
    return type(stats)(**{n: type(getattr(stats, n))(v) for n, v in zip(names, summed, strict=True)})


def sum_gradients(ranks: Ranks, params: list[torch.nn.Parameter]) -> None:
    """Sum the trainable gradients over ranks in one flat buffer (a rank with no example this step adds
    zeros)."""
    if not ranks.distributed:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    _collective(lambda: dist.all_reduce(flat))
    offset = 0
    for p in params:
        p.grad.copy_(flat[offset:offset + p.numel()].view_as(p))
        offset += p.numel()


def broadcast_parameters(ranks: Ranks, params: list[torch.nn.Parameter]) -> None:
    """Every rank starts from rank 0's trainable weights (as DDP does at wrap time)."""
    if not ranks.distributed:
        return
    with torch.no_grad():
        for p in params:
            _collective(lambda p=p: dist.broadcast(p.data, src=0))

