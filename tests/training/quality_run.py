"""The quality test's training run: `auto` hyperparameters on the bundled support data, on the real base
(minutes on a 2-core CPU), in its own process as a job's trainer is.

Started once per test session as soon as collection shows the test is selected (tests/conftest.py), so it
trains while the other tests run. It runs at a lower priority: it takes the CPU they leave idle (waiting
on servers and subprocesses) and slows them little. The test waits for it; run alone, it starts it itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tuneforge.settings import DEFAULT_BASE_MODEL

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TEST_NAME = "test_auto_lora_learns_the_support_facts"


class TrainingRun:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="tuneforge-quality-"))
        self.final_dir = self.folder / "job" / "final"
        config = self.folder / "train_config.json"
        job = {"base_model": DEFAULT_BASE_MODEL, "output_dir": str(self.folder / "job"),
               "training_file": str(EXAMPLES / "support_train.jsonl")}
        config.write_text(json.dumps(job), "utf-8")
        env = {**os.environ, "TUNEFORGE_HOME": str(self.folder / "home"), "HF_HUB_OFFLINE": "1"}
        with open(self.folder / "events.jsonl", "wb") as out, open(self.folder / "stderr.log", "wb") as err:
            command = [sys.executable, "-m", "tuneforge.training", "--config", str(config)]
            self.proc = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                                         preexec_fn=lambda: os.nice(10))

    def result(self, timeout: float) -> tuple[int, list[dict], str]:
        """Wait for the run: (exit code, its JSON-lines events, its stderr)."""
        code = self.proc.wait(timeout=timeout)
        lines = (self.folder / "events.jsonl").read_text("utf-8").splitlines()
        return code, [json.loads(line) for line in lines], (self.folder / "stderr.log").read_text("utf-8")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


_run: TrainingRun | None = None


def start() -> TrainingRun:
    """The session's run, started on first call."""
    global _run
    if _run is None:
        _run = TrainingRun()
    return _run


def stop() -> None:
    if _run is not None:
        _run.stop()
