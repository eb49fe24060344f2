"""Training throughput: tuneforge vs TRL's SFTTrainer + PEFT, same data and hyperparameters, one run.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/train_throughput.py [--epochs 1] [--batch-size 4]

Both train the built-in base (SmolLM2-135M-Instruct) with the same LoRA (rank, alpha, targets), learning
rate, linear schedule, batch size, epochs, max length and precision (tuneforge's resolved one: fp32 on CPU,
bf16 on GPUs) on the bundled support data, with loss on the assistant answers only (TRL: conversational
prompt/completion rows, its `completion_only_loss`). TRL runs with its defaults otherwise (a batch is padded
to its longest row). Prints trained tokens/s for both (the dataset's real, non-padding tokens per second of
training), the ratio, both final losses (the mean of the last quarter of steps, and the loss over the whole
dataset after training, scored by the same code), and tuneforge's model FLOP utilisation against this
machine's matmul peak in the precision both used, measured with a 1024x1024 matmul. Needs the `bench`
extra (`pip install -e .[bench]`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "support_train.jsonl"
BASE = "smollm2-135m-instruct"


def matmul_peak(dtype_name: str, n: int = 1024, reps: int = 5) -> float:
    """FLOP/s of the best of `reps` n x n matmuls in `dtype_name` (a CPU without AVX-512 bf16 runs bf16
    GEMMs on a slow path, around 1 GFLOP/s, so keep n small)."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def dataset_tokens(tokenizer, max_len: int) -> tuple[int, int]:
    """(all tokens, trained tokens) of one pass over the data, as tuneforge encodes it."""
    from tuneforge.data.encode import encode_example

    rows = [json.loads(line) for line in DATA.read_text("utf-8").splitlines()]
    enc = [encode_example(r, tokenizer, max_len) for r in rows]
    return sum(len(e.input_ids) for e in enc), sum(e.n_trained_tokens for e in enc)


def last_quarter(values: list[float]) -> float:
    tail = values[-max(1, len(values) // 4):]
    return sum(tail) / len(tail)


def data_loss(model, tokenizer, max_len: int) -> float:
    """Mean loss per trained token over the whole dataset after training, scored by the same code for both
    trainers (a fairer final loss than the noisy last steps, whose batches differ between the two)."""
    from tuneforge.data.io import read_examples
    from tuneforge.training.dataset import encode_rows, pack
    from tuneforge.training.run import TOKEN_BUDGET
    from tuneforge.training.step import eval_rows

    encoded = encode_rows(read_examples(DATA), tokenizer, max_len, 0.0)
    return eval_rows(model.eval(), pack(encoded.examples, TOKEN_BUDGET), "cpu", False).loss


def run_tuneforge(args, out: Path) -> dict:
    from tuneforge.training import TrainConfig, train
    from tuneforge.training.hparams import BASE_LR

    events: list[dict] = []
    cfg = TrainConfig.from_dict({
        "base_model": BASE, "training_file": str(DATA), "output_dir": str(out), "n_epochs": args.epochs,
        "batch_size": args.batch_size, "learning_rate_multiplier": args.lr / BASE_LR["lora"], "seed": 0,
        "lora": {"r": args.rank, "alpha": args.alpha}, "max_seq_length": args.max_len, "warmup_ratio": 0.0,
        "precision": args.precision})
    marks: dict[str, float] = {}

    def on_event(e: dict) -> None:
        events.append(e)
        if e["type"] == "started":
            marks["start"] = time.perf_counter()
        elif e["type"] == "step" and e["step"] == e["total_steps"]:
            marks["end"] = time.perf_counter()

    result = train(cfg, callbacks=on_event)
    losses = [e["train_loss"] for e in events if e["type"] == "step"]
    from peft import PeftModel

    from tuneforge.models import load_base_model, load_tokenizer

    tuned = PeftModel.from_pretrained(load_base_model(BASE), result.final_dir)
    return {"seconds": marks["end"] - marks["start"], "final_loss": last_quarter(losses),
            "steps": len(losses), "data_loss": data_loss(tuned, load_tokenizer(BASE), args.max_len)}


def run_trl(args, out: Path) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from tuneforge.models import base_model_folder
    from tuneforge.training.config import DEFAULT_TARGETS

    folder = base_model_folder(BASE)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    rows = [json.loads(line)["messages"] for line in DATA.read_text("utf-8").splitlines()]
    data = Dataset.from_list([{"prompt": m[:-1], "completion": m[-1:]} for m in rows])
    config = SFTConfig(
        output_dir=str(out), num_train_epochs=args.epochs, per_device_train_batch_size=args.batch_size,
        learning_rate=args.lr, lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, bf16=args.bf16,
        use_cpu=True, max_length=args.max_len, completion_only_loss=True, logging_steps=1, save_strategy="no",
        report_to=[], seed=0, dataloader_num_workers=0, max_grad_norm=1.0, disable_tqdm=True)
    marks: dict[str, float] = {}

    class Timer(TrainerCallback):
        def on_train_begin(self, *a, **k):
            marks["start"] = time.perf_counter()

        def on_train_end(self, *a, **k):
            marks["end"] = time.perf_counter()

    trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer,
                         peft_config=LoraConfig(r=args.rank, lora_alpha=args.alpha, lora_dropout=0.0,
                                                target_modules=DEFAULT_TARGETS, task_type="CAUSAL_LM"),
                         callbacks=[Timer()])
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"seconds": marks["end"] - marks["start"], "final_loss": last_quarter(losses),
            "steps": len(losses), "data_loss": data_loss(trainer.model, tokenizer, args.max_len)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-3, help="for both (default: tuneforge's auto lr)")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--alpha", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=1024)
    parser.add_argument("--precision", default="auto", help="tuneforge's precision (auto: fp32 on CPU)")
    args = parser.parse_args()

    import torch

    from tuneforge.models import load_tokenizer
    from tuneforge.training.run import configure_threads

    threads = configure_threads()
    tokenizer = load_tokenizer(BASE)
    n_tokens, n_trained = dataset_tokens(tokenizer, args.max_len)
    from tuneforge.training.config import TrainConfig
    from tuneforge.training.run import use_bf16

    # Both trainers use one precision: tuneforge's resolved one (auto: bf16 on GPUs, fp32 on CPU).
    args.bf16 = use_bf16(TrainConfig.from_dict({"base_model": BASE, "training_file": str(DATA),
                                                "output_dir": "-", "precision": args.precision}), "cpu")
    precision = "bfloat16" if args.bf16 else "float32"
    peak = matmul_peak(precision)
    bf16_peak = peak if args.bf16 else matmul_peak("bfloat16", n=256, reps=2)
    with tempfile.TemporaryDirectory() as tmp:
        tf = run_tuneforge(args, Path(tmp) / "tuneforge")
        trl = run_trl(args, Path(tmp) / "trl")
    tokens = n_tokens * args.epochs
    tf_tps, trl_tps = tokens / tf["seconds"], tokens / trl["seconds"]
    # Model FLOPs LoRA training needs: forward (2 FLOPs/param/token) + input gradients (2) through every
    # decoder linear; the vocabulary projection only where a token is trained (that is all the loss needs).
    from transformers import AutoConfig

    from tuneforge.models import base_model_folder

    c = AutoConfig.from_pretrained(base_model_folder(BASE))
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    per_layer = 2 * c.hidden_size * c.num_attention_heads * head_dim \
        + 2 * c.hidden_size * c.num_key_value_heads * head_dim + 3 * c.hidden_size * c.intermediate_size
    flops = 4 * per_layer * c.num_hidden_layers * tokens \
        + 4 * c.hidden_size * c.vocab_size * n_trained * args.epochs
    mfu = flops / tf["seconds"] / peak
    print(f"torch {torch.__version__}, {threads} threads; data {DATA.name}: {n_tokens} tokens/epoch "
          f"({n_trained} trained); epochs {args.epochs}, batch {args.batch_size}, lr {args.lr}, "
          f"LoRA r{args.rank}/a{args.alpha} all linear layers; both {precision}")
    print(f"tuneforge: {tf_tps:8.1f} tokens/s  ({tf['seconds']:.1f} s, {tf['steps']} steps)  "
          f"last-quarter loss {tf['final_loss']:.4f}  data loss after training {tf['data_loss']:.4f}")
    print(f"TRL SFT:   {trl_tps:8.1f} tokens/s  ({trl['seconds']:.1f} s, {trl['steps']} steps)  "
          f"last-quarter loss {trl['final_loss']:.4f}  data loss after training {trl['data_loss']:.4f}")
    print(f"ratio tuneforge/TRL: {tf_tps / trl_tps:.2f}x")
    print(f"tuneforge MFU: {100 * mfu:.1f}% of the measured {precision} matmul peak "
          f"({peak / 1e9:.0f} GFLOP/s; bf16 measures {bf16_peak / 1e9:.0f} GFLOP/s on this CPU)")
    print(f"machine load average during the run: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
