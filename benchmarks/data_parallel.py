"""Data-parallel training: one process against two torchrun ranks on the same job, in one run.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/data_parallel.py [--examples 64] [--batch-size 8] \
        [--method full]

Both train the built-in base (SmolLM2-135M-Instruct) with the default LoRA (or, with `--method full`, every
weight: the two ranks then shard the model with FSDP2) on the first `--examples` rows
of the bundled support data, one epoch, the same global batch, seed and precision (fp32 on a CPU), through
the command a job runs (training/launch.py). Prints for each: wall time from launch to the final model,
the training loop's tokens/s (from its last step event) and the final loss, then the speed ratio and the
largest per-step loss difference between the two curves. On a CPU the ranks share its cores (each gets
cores / ranks threads), so two ranks measure the cost of the collectives, not a speed-up; on GPUs each
rank has its own device.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import cpu_name, read_rows  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "support_train.jsonl"


def run(config: dict, work: Path, processes: int) -> dict:
    from tuneforge.training.launch import trainer_command, trainer_env

    path = work / f"config-{processes}.json"
    path.write_text(json.dumps({**config, "output_dir": str(work / f"out-{processes}")}), "utf-8")
    started = time.perf_counter()
    proc = subprocess.run(trainer_command(str(path), processes), env=trainer_env(processes),
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    if proc.returncode != 0 or not any(e["type"] == "completed" for e in events):
        sys.exit(f"{processes} process(es) failed:\n{proc.stderr[-3000:]}")
    steps = [e for e in events if e["type"] == "step"]
    return {"wall": wall, "tokens_per_second": steps[-1]["tokens_per_second"],
            "losses": [e["train_loss"] for e in steps]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--method", choices=("lora", "full"), default="lora")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "train.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in read_rows(DATA)[:args.examples]), "utf-8")
        config = {"base_model": "smollm2-135m-instruct", "training_file": str(data), "n_epochs": 1,
                  "batch_size": args.batch_size,
                  "learning_rate_multiplier": 2 if args.method == "lora" else 0.1,
                  "seed": 42, "method": args.method,
                  "precision": "fp32" if not _has_cuda() else "auto"}
        one, two = run(config, work, 1), run(config, work, 2)
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores")
    print(f"{args.method}: {args.examples} examples, 1 epoch, global batch {args.batch_size}, "
          f"{len(one['losses'])} steps")
    for name, r in (("1 process", one), ("2 ranks", two)):
        print(f"  {name:9}  wall {r['wall']:6.1f} s  loop {r['tokens_per_second']:6.1f} tokens/s  "
              f"final loss {r['losses'][-1]:.4f}")
    diff = max(abs(a - b) for a, b in zip(one["losses"], two["losses"], strict=True))
    print(f"  2 ranks / 1 process: loop tokens/s x{two['tokens_per_second'] / one['tokens_per_second']:.2f}, "
          f"wall x{one['wall'] / two['wall']:.2f}; largest per-step loss difference {diff:.2e}")


def _has_cuda() -> bool:
    from tuneforge.training.launch import visible_gpus

    return visible_gpus() > 0


if __name__ == "__main__":
    main()
