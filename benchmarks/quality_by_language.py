"""Quality per language and per base: what a LoRA fine-tune of each built-in base learns of the bundled
bilingual support set (Harbor Bikes, English and Chinese), and what it gets right on held-out paraphrases.

Run: HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/quality_by_language.py [--base NAME ...] [--grid E,M,R ...]

Each grid point is epochs,learning-rate multiplier,LoRA rank ("auto" for OpenAI's defaults, which is the
default grid). It trains on 104 of the 156 bundled examples (two of every three, as
tests/training/test_quality.py does: 78 English, 26 Chinese), in its own process as a job does, then scores
greedy answers with ROUGE-L (character-level for Chinese, `tuneforge eval`'s scorer) per language: on half
of the training questions (26 English, 26 Chinese; "seen": does it reproduce what it was shown?) and on
the 39 held-out questions, tuned and base. Printed: one row per base and grid point, with the job's wall
time and final loss, and the machine. The figures of docs/training.md ("Languages") come from this script.
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
# The suite's quality tests answer and score the same way (tests/training/support_score.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "training"))
from benchkit import cpu_name, read_rows  # noqa: E402
from support_score import generate_answers, rouge_by_language  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _scores(model, tokenizer, rows: list[dict]) -> dict[str, float]:
    """ROUGE-L per language of the model's greedy answers to the rows' questions."""
    answers = generate_answers(model, tokenizer, [r["messages"][:-1] for r in rows], max_new_tokens=96)
    return rouge_by_language(answers, [r["messages"][-1]["content"] for r in rows])


def _train(base: str, train: Path, out: Path, point: tuple, precision: str) -> tuple[float, float | None]:
    """(wall seconds, last train loss) of one LoRA job run as the worker runs it."""
    epochs, mult, rank = point
    config = {"base_model": base, "training_file": str(train), "output_dir": str(out),
              "n_epochs": epochs, "learning_rate_multiplier": mult, "precision": precision}
    if rank != "auto":
        config["lora"] = {"r": int(rank), "alpha": 2 * int(rank)}
    path = out.with_suffix(".json")
    path.write_text(json.dumps(config), "utf-8")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "tuneforge.training", "--config", str(path)],
                          capture_output=True, text=True, env={**os.environ})
    wall = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"training {base} {point} failed:\n{proc.stderr[-3000:]}")
    losses = [e["train_loss"] for e in map(json.loads, proc.stdout.splitlines())
              if e.get("type") == "step" and e.get("train_loss") is not None]
    return wall, (sum(losses[-10:]) / len(losses[-10:]) if losses else None)


def _point(text: str) -> tuple:
    if text == "auto":
        return ("auto", "auto", "auto")
    epochs, mult, rank = text.split(",")
    return (int(epochs), float(mult), rank)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", action="append", help="a base model (repeatable); default both built-ins")
    parser.add_argument("--grid", nargs="*", default=["auto"], help="epochs,lr multiplier,rank or auto")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    args = parser.parse_args()
    import torch
    from peft import PeftModel

    from tuneforge.models import load_base_model, load_tokenizer

    rows = read_rows(EXAMPLES / "support_train.jsonl")
    train_rows = [r for i, r in enumerate(rows) if i % 3 != 2]
    seen = train_rows[1::2]  # the rows repeat 4 English, 2 Chinese: this half has every Chinese one
    held = read_rows(EXAMPLES / "support_heldout.jsonl")
    work = Path(tempfile.mkdtemp(prefix="tuneforge-languages-"))
    train = work / "support_104.jsonl"
    train.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in train_rows), "utf-8")
    print(f"quality by language: {len(train_rows)} training examples, {len(seen)} seen and {len(held)} "
          f"held-out questions; {cpu_name()}", flush=True)
    print(f"precision: {args.precision}")
    print("base | epochs, lr mult, rank | job wall | final loss | seen en / zh | held-out en / zh | "
          "base held-out en / zh", flush=True)
    for base in args.base or ["smollm2-135m-instruct", "gemma3-270m"]:
        tokenizer = load_tokenizer(base)
        model = load_base_model(base, dtype=torch.float32)
        base_held = _scores(model, tokenizer, held)
        for i, text in enumerate(args.grid):
            point = _point(text)
            wall, loss = _train(base, train, work / f"{base}-{i}", point, args.precision)
            tuned = PeftModel.from_pretrained(model, work / f"{base}-{i}" / "final").eval()
            s, h = _scores(tuned, tokenizer, seen), _scores(tuned, tokenizer, held)
            model = tuned.unload()
            print(f"{base} | {', '.join(map(str, point))} | {wall / 60:.1f} min | "
                  f"{loss if loss is None else round(loss, 3)} | {s['en']:.2f} / {s['zh']:.2f} | "
                  f"{h['en']:.2f} / {h['zh']:.2f} | {base_held['en']:.2f} / {base_held['zh']:.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
