"""DPO on the built-in base, measured: held-out preference margins before and after one DPO run.

    HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python benchmarks/dpo_support.py [--every 4] [--n-epochs auto]

Trains `smollm2-135m-instruct` with tuneforge's DPO (LoRA, `auto` hyperparameters unless given) on every
`--every`-th pair of examples/support_preference_train.jsonl (the support answer preferred over a curt,
unhelpful one; `python examples/build_preference_dataset.py` makes the files), then scores the 39 pairs of
examples/support_preference_heldout.jsonl, whose questions and rejected answers are not in the training
pairs. Prints, before and after: the mean margin log p(preferred) - log p(non-preferred) (summed over the
answer tokens), the share of pairs with a positive margin, and the held-out DPO reward accuracy (pairs whose
margin grew: reward(preferred) > reward(non-preferred)); plus wall times and the CPU (lscpu).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from benchkit import cpu_name, read_rows

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "examples" / "support_preference_train.jsonl"
HELDOUT = ROOT / "examples" / "support_preference_heldout.jsonl"
BASE = "smollm2-135m-instruct"



def _margins(model, tokenizer, rows: list[dict]):
    from tuneforge.data.preference import encode_pair
    from tuneforge.training.dpo import pair_logps

    logps = pair_logps(model, [encode_pair(r, tokenizer, 2048) for r in rows], "cpu", False, 8192)
    return logps[:, 0] - logps[:, 1]



def _auto(value: str):
    return value if value == "auto" else float(value) if "." in value else int(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=4, help="train on every N-th training pair")
    for name in ("n-epochs", "batch-size", "learning-rate-multiplier", "beta"):
        parser.add_argument(f"--{name}", default="auto")
    args = parser.parse_args()

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tuneforge.models import base_model_folder, load_tokenizer
    from tuneforge.settings import get_settings
    from tuneforge.training import TrainConfig, train

    settings = get_settings()
    folder = base_model_folder(BASE, settings)
    tokenizer = load_tokenizer(BASE, settings)
    heldout = read_rows(HELDOUT)
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    before = _margins(base, tokenizer, heldout)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.jsonl"
        picked = read_rows(TRAIN)[:: args.every]
        data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in picked), "utf-8")
        config = TrainConfig.from_dict({
            "base_model": BASE, "training_file": str(data), "output_dir": str(Path(tmp) / "out"),
            "training_method": "dpo", "n_epochs": _auto(args.n_epochs), "batch_size": _auto(args.batch_size),
            "learning_rate_multiplier": _auto(args.learning_rate_multiplier), "beta": _auto(args.beta)})
        steps: list[dict] = []
        started = time.monotonic()
        result = train(config, callbacks=lambda e: steps.append(e) if e["type"] == "step" else None)
        train_seconds = time.monotonic() - started
        tuned = PeftModel.from_pretrained(base, result.final_dir)
        after = _margins(tuned, tokenizer, heldout)
    gain = after - before
    last = steps[-1]
    print(json.dumps({
        "machine": cpu_name(), "torch_threads": torch.get_num_threads(), "train_pairs": len(picked),
        "heldout_pairs": len(heldout), "hyperparameters": result.hyperparameters, "steps": result.step,
        "train_seconds": round(train_seconds, 1),
        "heldout_mean_margin_before": round(float(before.mean()), 2),
        "heldout_mean_margin_after": round(float(after.mean()), 2),
        "heldout_positive_margin_before": round(float((before > 0).float().mean()), 3),
        "heldout_positive_margin_after": round(float((after > 0).float().mean()), 3),
        "heldout_reward_accuracy": round(float((gain > 0).float().mean()), 3),
        "last_step_train_loss": round(last["train_loss"], 4),
        "last_step_train_reward_accuracy": last["train_reward_accuracy"],
    }, indent=2))


if __name__ == "__main__":
    main()
