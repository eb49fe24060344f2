"""Measure the training throughput that data/throughput.py's estimates use (the real engine, 8 steps).

    HF_HUB_OFFLINE=1 .venv/bin/python -m tuneforge.training.measure examples/support_train.jsonl

It lives in training/ because it runs the trainer; the data layer only reads the measured constant.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tuneforge.data.throughput import REFERENCE_MODEL, TWO_THREAD_SPEEDUP


def measure(training_file: Path, base_model: str = REFERENCE_MODEL, steps: int = 8) -> dict:
    """Time `steps` training steps (batch 1) of the real engine, single-threaded, in CPU seconds.

    CPU time of one thread is what a step costs whatever else the machine is doing; wall time and
    multi-threaded CPU time are not (OpenMP threads spin while they wait for a descheduled sibling)."""
    import torch

    from tuneforge.data.io import read_examples
    from tuneforge.models import load_tokenizer
    from tuneforge.settings import get_settings
    from tuneforge.training.config import TrainConfig
    from tuneforge.training.dataset import encode_rows, pack
    from tuneforge.training.model import build_model, trainable_parameters
    from tuneforge.training.run import TOKEN_BUDGET, use_bf16
    from tuneforge.training.step import train_batch

    torch.set_num_threads(1)
    config = TrainConfig(base_model=base_model, training_file=str(training_file), output_dir="unused")
    tokenizer = load_tokenizer(base_model)
    encoded = encode_rows(read_examples(training_file)[: steps + 1], tokenizer, config.max_seq_length, 0.0)
    model = build_model(config, get_settings(), "cpu")
    optimizer = torch.optim.AdamW(trainable_parameters(model), lr=1e-4)
    bf16 = use_bf16(config, "cpu")
    tokens = cpu = 0.0
    for i, example in enumerate(encoded.examples[: steps + 1]):
        start = time.process_time()
        stats = train_batch(model, pack([example], TOKEN_BUDGET), "cpu", bf16)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i:  # step 0 warms up
            tokens, cpu = tokens + stats.n_input_tokens, cpu + time.process_time() - start
    per_thread = tokens / cpu
    return {"steps": steps, "tokens": int(tokens), "cpu_seconds": round(cpu, 2), "bf16": bf16,
            "tokens_per_cpu_second": round(per_thread, 1),
            "tokens_per_second_2_threads": round(per_thread * TWO_THREAD_SPEEDUP, 1)}


if __name__ == "__main__":
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("examples/support_train.jsonl")
    print(json.dumps(measure(data)))
