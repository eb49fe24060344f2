"""Small helpers shared by the test folders (each folder's own kit re-exports what its tests use)."""

from __future__ import annotations

import json
import socket
from pathlib import Path


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UvicornThread:
    """A real uvicorn server for `app` on a free loopback port, in a thread (lifespan included)."""

    def __init__(self, app, timeout: float = 60):
        import threading
        import time

        import uvicorn

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def wait_for(predicate, timeout: float = 180, what: str = "condition") -> object:
    """Poll `predicate()` until it returns something truthy, and return that; fail after `timeout`
    seconds. The one way tests wait (never a fixed sleep)."""
    import time

    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)
    return value


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    """Write rows as JSONL, non-ASCII text kept as is (as users' files are)."""
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def random_full_fine_tune(base_folder: Path, out: Path, *, base_model: str, seed: int) -> Path:
    """Save full weights that differ from the base's (every layer moved), with its tokenizer and
    tuneforge's metadata, as a full fine-tune is saved."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base_folder, dtype=torch.float32)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.model.layers.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base_folder).save_pretrained(out)
    (out / "tuneforge_model.json").write_text(json.dumps({"base_model": base_model, "method": "full"}))
    return out


ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def random_lora(base_folder: Path, out: Path, *, base_model: str, seed: int, rank: int, alpha: int,
                b_scale: float = 1.0, targets: list[str] = ALL_PROJECTIONS) -> Path:
    """Save a PEFT LoRA adapter with random A and B (so it really changes the output; `b_scale` sets how
    much) on the model in `base_folder`, with tuneforge's metadata naming `base_model`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_folder, dtype=torch.float32)
    config = LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=False, target_modules=list(targets))
    peft_model = get_peft_model(model, config)
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            p.data.mul_(b_scale)
    peft_model.save_pretrained(out)
    (out / "tuneforge_model.json").write_text(json.dumps({"base_model": base_model, "method": "lora"}))
    return out
