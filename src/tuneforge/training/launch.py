"""The command that starts a job's trainer: `python -m tuneforge.training` for one process, torchrun
(PyTorch's own launcher) for several. Importing this module imports no torch: the server uses it."""

from __future__ import annotations

import os
import sys

# How often torchrun checks its ranks: a dead rank ends the others' attempt within this.
MONITOR_SECONDS = 0.5


def visible_gpus() -> int:
    """NVIDIA GPUs this process may use, without importing torch into the server: the driver's device
    list, narrowed by CUDA_VISIBLE_DEVICES."""
    root = "/proc/driver/nvidia/gpus"
    found = len(os.listdir(root)) if os.path.isdir(root) else 0
    chosen = os.environ.get("CUDA_VISIBLE_DEVICES")
    if chosen is None:
        return found
    picked = [d for d in chosen.split(",") if d.strip() and not d.strip().startswith("-")]
    return min(found, len(picked))


def job_processes(configured: int | None, job_cap: int | None, method: str) -> int:
    """How many ranks train a job: the worker's setting (TUNEFORGE_TRAIN_PROCESSES; default one per GPU,
    one on a CPU), capped by the job's `max_processes`. DPO trains in one process."""
    if method == "dpo":
        return 1
    have = configured or max(1, visible_gpus())
    return max(1, min(have, job_cap or have))


def trainer_command(config_path: str, processes: int = 1) -> list[str]:
    entry = ["-m", "tuneforge.training", "--config", str(config_path)]
    if processes <= 1:
        return [sys.executable, *entry]
    # --standalone: a rendezvous on a free local port, so concurrent jobs never collide. No restarts here:
    # a lost rank ends the attempt and the job queue retries it from the last checkpoint.
    return [sys.executable, "-m", "tuneforge.training.torchrun", "--standalone", "--nnodes", "1",
            "--nproc-per-node", str(processes), "--max-restarts", "0",
            "--monitor-interval", str(MONITOR_SECONDS), *entry]


def trainer_env(processes: int, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a launch: with several ranks on one CPU, each gets its share of the cores (torchrun
    would otherwise set one thread each, with a warning)."""
    env = dict(os.environ if env is None else env)
    if processes > 1 and "OMP_NUM_THREADS" not in env:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        env["OMP_NUM_THREADS"] = str(max(1, cores // processes))
    return env
