"""Runs one claimed job: `python -m tuneforge.training --config JOBDIR/train_config.json` in a subprocess.

Why a subprocess: a crash, an out-of-memory kill or a cancel never takes the server down, and the
trainer's state on disk (checkpoints) is all a later run needs to resume.

Never twice: the runner holds an exclusive `flock` on `JOBDIR/run.lock` and hands the descriptor to the
trainer, so the lock lives exactly as long as the trainer process. A worker that takes over a job from
a dead one first kills any trainer the dead one left behind (its pid is in `JOBDIR/run.pid`) and waits
for the lock. On Linux the trainer also dies with the worker (PR_SET_PDEATHSIG). The trainer is forked
from a warm process that imported torch once, when it can be (jobs/trainer_process.py).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

from tuneforge.data.limits import min_examples
from tuneforge.jobs import files as job_files
from tuneforge.jobs.events import Messages, add_event
from tuneforge.jobs.naming import now
from tuneforge.jobs.progress import ProgressRecorder
from tuneforge.jobs.queue import WorkerIdentity, heartbeat, release
from tuneforge.jobs.trainer_process import start_trainer
from tuneforge.models.registry import lookup_model
from tuneforge.settings import Settings
from tuneforge.store.db import Database
from tuneforge.store.tables_jobs import Job
from tuneforge.training.launch import job_processes

log = logging.getLogger("tuneforge.jobs")
HEARTBEAT_SECONDS = 2.0
TERM_GRACE_SECONDS = 60.0
# Starts of a data-parallel job that may end with a lost rank before the job is failed: a rank that
# dies every time (out of memory on one device, say) would otherwise be retried forever.
RANK_LOSS_STARTS = 3

def job_dir(settings: Settings, job_id: str) -> Path:
    return settings.jobs_dir / job_id


def _lock_job_dir(folder: Path) -> int:
    """Take the job's run lock, killing a trainer a dead worker left behind; returns the lock fd."""
    fd = os.open(folder / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + TERM_GRACE_SECONDS
    killed = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pid_file = folder / "run.pid"
            if not killed and pid_file.is_file():
                try:
                    os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
                except (ValueError, ProcessLookupError, PermissionError):
                    pass
                killed = True
            if time.monotonic() > deadline:
                os.close(fd)
                raise RuntimeError(f"{folder}: another trainer still holds this job's lock") from None
            time.sleep(0.2)


def write_train_config(db: Database, settings: Settings, job: Job) -> Path:
    folder = job_dir(settings, job.id)
    folder.mkdir(parents=True, exist_ok=True)
    hp = job.hyperparameters or {}
    init_from = None
    if job.init_from:
        parent = lookup_model(db, job.init_from, job.project)
        init_from = str(parent.path) if parent else None
    config = {
        "base_model": job.base_model,
        "training_file": str(job_files.file_path(db, settings, job.training_file)),
        "validation_file": (str(job_files.file_path(db, settings, job.validation_file))
                            if job.validation_file else None),
        "output_dir": str(folder / "output"),
        "method": job.training_type,
        "n_epochs": hp.get("n_epochs", "auto"),
        "batch_size": hp.get("batch_size", "auto"),
        "learning_rate_multiplier": hp.get("learning_rate_multiplier", "auto"),
        "seed": job.seed,
        "prompt_loss_weight": float(hp.get("prompt_loss_weight") or 0.0),
        "init_from": init_from,
        "resume": bool(job.resume),
        # The one rule (data.limits): a legacy 2-example file trains, like OpenAI's /v1/fine-tunes did.
        "min_examples": min_examples("training", bool(job.legacy)),
        "training_method": job.method or "supervised",  # method.type: supervised | dpo
        "beta": hp.get("beta", "auto"),
        "gradient_checkpointing": settings.gradient_checkpointing,
    }
    path = folder / "train_config.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=2), "utf-8")
    os.replace(tmp, path)
    return path


class JobRun:
    """One trainer process for one job, watched by a heartbeat thread that also relays cancel/pause."""

    def __init__(self, db: Database, settings: Settings, job_id: str, worker: WorkerIdentity,
                 shutting_down: threading.Event):
        self.db, self.settings, self.job_id, self.worker = db, settings, job_id, worker
        self.shutting_down = shutting_down
        self.stop_reason: str | None = None  # status the user asked for, "lost", or "shutdown"
        self.proc = None  # a subprocess.Popen, or a trainer forked by the warm trainer (same calls)
        self.processes = 1  # training ranks of this run
        self.attempts = 0

    def run(self) -> None:
        with self.db.session() as session:
            job = session.get(Job, self.job_id)
            assert job is not None
            config_path = write_train_config(self.db, self.settings, job)
            self.processes = job_processes(self.settings.train_processes, job.max_processes, job.method)
            self.attempts = job.attempts or 0
        folder = config_path.parent
        lock_fd = _lock_job_dir(folder)
        recorder = ProgressRecorder(self.db, self.settings, self.job_id, self.worker)
        try:
            with open(folder / "train.log", "ab") as log_file:
                self.proc = start_trainer(str(config_path), log_file, lock_fd,
                                          warm=self.settings.warm_trainer, processes=self.processes)
            (folder / "run.pid").write_text(str(self.proc.pid))
            watcher = threading.Thread(target=self._watch, name=f"watch-{self.job_id}", daemon=True)
            watcher.start()
            assert self.proc.stdout is not None
            for raw in self.proc.stdout:
                try:
                    line = json.loads(raw)
                except json.JSONDecodeError:
                    log.warning("job %s: trainer printed a non-JSON line: %r", self.job_id, raw[:200])
                    continue
                if isinstance(line, dict):
                    recorder.handle(line)
            code = self.proc.wait()
        finally:
            os.close(lock_fd)
        self._finish(recorder, code, folder)

    def _watch(self) -> None:
        """Heartbeat; stop the trainer when the user cancelled/paused or another worker took the job."""
        assert self.proc is not None
        termed_at: float | None = None
        while self.proc.poll() is None:
            if termed_at is None:
                try:
                    self.stop_reason = self._stop_reason()
                except Exception:  # a busy or lost database must not end the watch: try again next beat
                    log.exception("job %s: heartbeat failed", self.job_id)
                if self.stop_reason == "lost":
                    self.proc.kill()  # someone else owns the job now: stop at once
                if self.stop_reason is not None and self.proc.poll() is None:
                    termed_at = time.monotonic()
                    self.proc.send_signal(signal.SIGTERM)  # the trainer stops between steps
            elif time.monotonic() - termed_at > TERM_GRACE_SECONDS:
                self.proc.kill()
            if termed_at is None and not self.shutting_down.is_set():
                self.shutting_down.wait(HEARTBEAT_SECONDS)  # wakes the moment the worker stops
            else:
                time.sleep(0.2)

    def _stop_reason(self) -> str | None:
        """Why the trainer should stop now: the status the user asked for, "lost", "shutdown", or None."""
        status = heartbeat(self.db, self.job_id, self.worker)
        if status is None:
            return "lost"
        if status != "running":
            return status
        return "shutdown" if self.shutting_down.is_set() else None

    def _finish(self, recorder: ProgressRecorder, code: int, folder: Path) -> None:
        outcome = recorder.outcome
        if self.stop_reason is None and not outcome.completed:
            # The trainer ended between two heartbeats: a pause or cancel may have landed meanwhile (its
            # `completed` line was then ignored), so the job's status now decides, never a stale guess.
            self.stop_reason = self._stop_reason()
        if outcome.completed or self.stop_reason == "lost":
            release(self.db, self.job_id, self.worker)
            return
        if self.stop_reason in ("paused", "queued"):  # paused (and maybe resumed already): continue later
            release(self.db, self.job_id, self.worker, resume=True)
            return
        if self.stop_reason is not None and self.stop_reason != "shutdown":  # cancelled, failed by the API
            release(self.db, self.job_id, self.worker)
            return
        if self.stop_reason == "shutdown":
            self._update(status="queued", resume=True, event=(
                f"Job interrupted at step {outcome.last_step or 0} because its worker shut down; it will "
                "resume from its last checkpoint", "warn"))
            return
        if self.processes > 1 and _rank_lost(outcome.failed, code) and self.attempts < RANK_LOSS_STARTS:
            self._update(status="queued", resume=True, event=(
                f"A training process of this job stopped at step {outcome.last_step or 0} (one of "
                f"{self.processes} ranks); the job resumes from its last checkpoint", "warn"))
            return
        code_name, message = outcome.failed or ("training_failed", _tail(folder / "train.log", code))
        self._update(status="failed", finished_at=now(), estimated_finish=None,
                     error={"code": code_name, "message": message, "param": None},
                     event=(None, "error"), failure=message)

    def _update(self, *, event: tuple[str | None, str], failure: str | None = None, **values) -> None:
        with self.db.session() as session:
            job = session.get(Job, self.job_id)
            if job is None or job.worker_id != self.worker.id:
                return
            if job.status != "running":  # paused or cancelled this very moment: theirs to decide, but let go
                job.resume = job.resume or job.status in ("paused", "queued")
                job.worker_id = job.worker_pid = job.heartbeat_at = None
                return
            for key, value in values.items():
                setattr(job, key, value)
            job.updated_at = now()
            job.worker_id = job.worker_pid = job.heartbeat_at = None
            message = event[0] or Messages(job.legacy).failed(failure or "")
            add_event(session, job.id, message, legacy=job.legacy, level=event[1])


def _rank_lost(failed: tuple[str, str] | None, code: int) -> bool:
    """A data-parallel attempt ended by a lost rank: rank 0 said so, or torchrun ended without a word (rank 0
    was killed too)."""
    return failed[0] == "rank_lost" if failed else code != 0


def _tail(path: Path, code: int) -> str:
    """The trainer died without saying why: quote the end of its log."""
    try:
        lines = [ln for ln in path.read_text("utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    last = lines[-1].strip()[:500] if lines else "no output"
    # The log's place relative to the server's home: an API error never names a server path.
    return (f"The training process exited with code {code} ({last}). The full log is "
            f"jobs/{path.parent.name}/{path.name} in the server's TUNEFORGE_HOME.")
