"""The worker that `tuneforge serve` runs in its own process unless told not to (`start_worker=False`)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from tuneforge.jobs.worker import Worker, WorkerThread


def install(app: FastAPI) -> None:
    """Register startup/shutdown hooks that run a job worker beside the API."""

    async def start(app: FastAPI) -> None:
        if not getattr(app.state, "start_worker", True):
            return
        thread = WorkerThread(Worker(app.state.db, app.state.settings))
        app.state.job_worker = thread
        thread.start()

    async def stop(app: FastAPI) -> None:
        thread = getattr(app.state, "job_worker", None)
        if thread is not None:  # a running job is stopped and queued again, to resume later
            await run_in_threadpool(thread.stop)

    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)
