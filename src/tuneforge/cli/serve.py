"""`tuneforge serve` (the OpenAI-compatible API under uvicorn) and `tuneforge keys ...` (API keys)."""

from __future__ import annotations

import contextlib
import json
import time

import typer
from rich.console import Console
from rich.table import Table

from tuneforge.cli.errors import fail
from tuneforge.settings import get_settings

keys_app = typer.Typer(help="API keys: once one exists, every request needs a valid key and sees only "
                            "its project's files, jobs and models.", no_args_is_help=True)
console = Console()
GRACEFUL_SHUTDOWN_S = 10  # open connections get this long to finish after SIGTERM or Ctrl-C
CHILD_STOP_S = 20  # then a trainer gets this long to stop between steps before it is killed


@contextlib.contextmanager
def _key_store():
    """The key store on the configured database. Imported here, not at the top: SQLAlchemy takes about
    half of the CLI's start-up, and every other command would pay for it."""
    from tuneforge.store.db import Database
    from tuneforge.store.keys import KeyStore, KeyStoreError

    db = Database(get_settings().database_url)
    db.init_schema()
    try:
        yield KeyStore(db)
    except KeyStoreError as exc:
        fail(str(exc))


def serve(
    host: str = typer.Option(None, "--host", help="Address to listen on (default from settings: 127.0.0.1)."),
    port: int = typer.Option(None, "--port", help="Port to listen on (default from settings: 8000)."),
    workers: bool = typer.Option(True, "--worker/--no-worker",
                                 help="Run a job worker inside the server (default) or not."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve the OpenAI-compatible API on http://HOST:PORT/v1 (and the web app on /)."""
    import uvicorn

    from tuneforge.api.app import create_app
    from tuneforge.api.auth import bind_refusal

    settings = get_settings()
    host = host or settings.host
    port = port if port is not None else settings.port
    with _key_store() as keys:
        keys_configured = keys.any_active()
    refusal = bind_refusal(host, keys_configured)
    if refusal:
        fail(refusal)
    # Requests arriving on a network address need a key even if the last one is revoked (api/guard.py).
    app = create_app(settings, start_worker=workers)
    auth = "API keys required" if keys_configured else "no API keys: any Bearer token is accepted"
    console.print(f"tuneforge API on http://{host}:{port}/v1 ({auth}); "
                  f"set OPENAI_BASE_URL=http://{host}:{port}/v1", highlight=False)
    # Open event streams (`fine_tunes.follow`) would hold a graceful shutdown forever: bound it.
    uvicorn.run(app, host=host, port=port, log_level=log_level,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    stop_children(CHILD_STOP_S)


def stop_children(timeout: float) -> list[int]:
    """End every process this server started that is still alive once it has shut down (a trainer
    stopping between steps, a merge subprocess): SIGTERM, then SIGKILL after `timeout`. A stopped job
    resumes from its last checkpoint, as after a crash. Returns the pids that had to be stopped."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=timeout)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(alive, timeout=5)
    return [child.pid for child in children]


@keys_app.command("create")
def create_key(
    project: str = typer.Option("default", "--project", help="The project the key belongs to."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Create an API key for PROJECT. The secret is shown once; only its hash is stored."""
    with _key_store() as keys:
        info, secret = keys.create(project)
    if as_json:
        print(json.dumps({"id": info.id, "project": info.project, "key": secret}))
        return
    console.print(f"Created key {info.id} for project [bold]{info.project}[/]. Store it now; it is not "
                  f"shown again:", highlight=False)
    print(secret)


@keys_app.command("list")
def list_keys(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """List API keys (ids, projects, the first characters of each secret, status)."""
    with _key_store() as store:
        keys = store.list()
    if as_json:
        print(json.dumps([{"id": k.id, "project": k.project, "prefix": k.prefix, "created_at": k.created_at,
                           "revoked_at": k.revoked_at} for k in keys], indent=2))
        return
    if not keys:
        console.print("No API keys: the server accepts any Bearer token and only listens on loopback. "
                      "Create one with `tuneforge keys create --project NAME`.")
        return
    table = Table("id", "project", "key", "created", "status")
    for k in keys:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(k.created_at))
        table.add_row(k.id, k.project, k.prefix + "...", created, "active" if k.active else "revoked")
    console.print(table)


@keys_app.command("revoke")
def revoke_key(key_id: str = typer.Argument(..., help="The key's id (`key_...`, see `keys list`).")) -> None:
    """Revoke an API key; requests with it get 401 from then on."""
    with _key_store() as keys:
        info = keys.revoke(key_id)
    console.print(f"Revoked {info.id} (project {info.project}).", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `serve` and the `keys` group to the `tuneforge` command."""
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
