"""Checkpoints: model + `training_state.pt` (optimizer, scheduler, RNG, data position, counters).

A checkpoint is written to a temporary folder and renamed into place, so a kill or an out-of-memory
error mid-write leaves the previous checkpoints intact. Only the newest `keep` are kept.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path

import torch

from tuneforge.models.methods import is_adapter
from tuneforge.training.model import MODEL_META, save_model

STATE_FILE = "training_state.pt"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def checkpoints_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = checkpoints_dir(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if (m := _STEP_DIR.match(p.name)) and (p / STATE_FILE).is_file()]
    return [p for _, p in sorted(found)]


def rng_state() -> dict:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(output_dir: str | Path, step: int, model, optimizer_state: dict, scheduler,
                    position: dict, config, tokenizer, keep: int, metrics: dict, *,
                    model_state: dict | None = None, optimizer_format: str | None = None) -> Path:
    """`model_state`: whole weights gathered from a sharded model (None: the model saves its own);
    `optimizer_format`: how `optimizer_state` is keyed when not as optimizer.state_dict() is
    (training/parallel.py)."""
    root = checkpoints_dir(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    tmp = root / f".step-{step}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(model, tmp, config, tokenizer, extra={"step": step, "metrics": metrics},
               state_dict=model_state)
    torch.save({"step": step, "position": position, "optimizer": optimizer_state,
                "optimizer_format": optimizer_format, "scheduler": scheduler.state_dict(), "rng": rng_state(),
                "metrics": metrics}, tmp / STATE_FILE)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".step-*.tmp-*"):  # left by a run that was killed while saving
        shutil.rmtree(stale, ignore_errors=True)
    return final


def load_model_weights(model, folder: Path, method: str) -> None:
    """Put a checkpoint's weights into an already built model of the same shape."""
    from safetensors.torch import load_file

    if is_adapter(method):
        from peft.utils import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(folder / "adapter_model.safetensors"))
        return
    missing, unexpected = model.load_state_dict(read_full_weights(folder), strict=False)
    if unexpected:
        raise RuntimeError(f"{folder}: checkpoint does not match the model ({unexpected[:3]} ...).")


def read_full_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a full model folder's safetensors files."""
    from safetensors.torch import load_file

    state = {}
    for f in sorted(folder.glob("*.safetensors")):
        state.update(load_file(f))
    return state


def saved_step_and_metrics(folder: Path) -> tuple[int, dict]:
    """What a checkpoint was saved with, read from its small metadata file (no tensors loaded)."""
    meta = json.loads((folder / MODEL_META).read_text("utf-8"))
    return int(meta["step"]), dict(meta.get("metrics") or {})


def load_training_state(folder: Path) -> dict:
    return torch.load(folder / STATE_FILE, map_location="cpu", weights_only=False)
