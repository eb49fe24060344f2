"""Live progress for a migration on a terminal: a bar per download and upload (bytes) and per training job
(steps, loss). In a pipe (a log file, a test) nothing is drawn: the one-line messages tell the same
story, and a redrawn bar would only fill the log."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

import openai
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn


def _mib(n: float) -> str:
    return f"{n / 1024 ** 2:.1f} MiB" if n >= 1024 ** 2 else f"{n / 1024:.1f} KiB"


class Bars:
    def __init__(self, console: Console):
        self.progress: Progress | None = None
        if console.is_terminal:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                                     TextColumn("{task.fields[detail]}"), TimeElapsedColumn(),
                                     console=console, transient=True)
        self._jobs: dict[str, TaskID] = {}

    def __enter__(self) -> Bars:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *_exc) -> None:
        if self.progress is not None:
            self.progress.stop()

    @contextmanager
    def transfer(self, label: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """`advance(n_bytes)` for one download or upload; the bar goes when it ends."""
        if self.progress is None:
            yield lambda _n: None
            return
        progress = self.progress
        task = progress.add_task(label, total=total, detail="")
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            progress.update(task, completed=done, detail=_mib(done) + (f" / {_mib(total)}" if total else ""))

        try:
            yield advance
        finally:
            progress.remove_task(task)

    def training(self, target: openai.OpenAI, job: dict) -> None:
        """Show a job's latest step (from its newest metrics event) beside its status."""
        if self.progress is None:
            return
        job_id = job["id"]
        if job_id not in self._jobs:
            self._jobs[job_id] = self.progress.add_task(job_id, total=None, detail=job["status"])
        detail, step, total = job["status"], None, None
        try:
            newest = target.fine_tuning.jobs.list_events(job_id, limit=1).data
        except openai.APIError:
            newest = []  # the bar only; following goes on with the job object
        if newest and newest[0].type == "metrics" and isinstance(newest[0].data, dict):
            data = newest[0].data
            step, total = data.get("step"), data.get("total_steps")
            if data.get("train_loss") is not None:
                detail = f"{detail} · train loss {data['train_loss']:.3f}"
        if job["status"] == "succeeded":
            step = total = total or 1
        self.progress.update(self._jobs[job_id], completed=step or 0, total=total, detail=detail)


class CountingReader(io.IOBase):
    """A file object whose reads advance a bar (httpx streams an upload by reading its file; an IOBase,
    since that is what the SDK accepts as file content)."""

    def __init__(self, fh: IO[bytes], advance: Callable[[int], None]):
        super().__init__()
        self._fh, self._advance = fh, advance

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._fh.read(size)
        self._advance(len(chunk))
        return chunk

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def fileno(self) -> int:
        return self._fh.fileno()
