"""`tuneforge worker`: run a job worker on its own (e.g. on a second machine sharing one PostgreSQL)."""

from __future__ import annotations

import logging
import signal
import time

import typer

from tuneforge.settings import get_settings


def worker(
    poll_interval: float = typer.Option(1.0, "--poll-interval", min=0.1,
                                        help="Seconds between looks at the queue when it is empty."),
    stale_after: float = typer.Option(60.0, "--stale-after", min=5.0,
                                      help="Seconds without a heartbeat after which another worker's running "
                                           "job counts as orphaned and is resumed here."),
    once: bool = typer.Option(False, "--once", help="Do the work that is waiting now, then exit."),
) -> None:
    """Claim and run fine-tuning jobs from the shared queue until interrupted (Ctrl-C)."""
    from tuneforge.jobs.worker import Worker
    from tuneforge.store.db import Database

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = get_settings()
    db = Database(settings.database_url)
    _init_schema(db)
    w = Worker(db, settings, poll_interval=poll_interval, stale_after=stale_after)

    def _stop(_sig, _frame) -> None:  # finish cleanly: a running job is stopped and re-queued
        logging.getLogger("tuneforge.jobs").info("stopping: the running job (if any) goes back to the queue")
        w.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    typer.echo(f"tuneforge worker {w.identity.id} on {db.engine.url.render_as_string(hide_password=True)}")
    if once:
        while not w.stopping.is_set() and w.run_once():
            pass
    else:
        w.run_forever()
    typer.echo(f"worker stopped after {w.jobs_run} training run(s)")


def _init_schema(db, attempts: int = 5) -> None:
    """Create missing tables. Workers started together on a fresh PostgreSQL race to create the same
    tables; the loser's CREATE fails, and a retry finds them made."""
    from sqlalchemy.exc import DBAPIError

    for attempt in range(attempts):
        try:
            db.init_schema()
            return
        except DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 + attempt)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
