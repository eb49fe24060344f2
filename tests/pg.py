"""A real PostgreSQL for tests: a throwaway cluster in a temp dir on a free 127.0.0.1 port.

Use it from a conftest.py: `from pg import postgres_url, database_url  # noqa: F401`.
- `postgres_url` (session): a PostgreSQL URL. Uses TUNEFORGE_TEST_POSTGRES_URL when set; otherwise
  installs Debian's postgresql if missing (scripts/test-system-deps.sh), runs initdb/pg_ctl (as the
  `postgres` user when running as root), yields the URL, and stops the cluster. Skips, saying why,
  only if PostgreSQL cannot be installed or started.
- `database_url` (per test, parametrised `sqlite` / `postgres`): an empty database of each kind.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ensure_installed() -> str | None:
    """Why PostgreSQL is unavailable, or None once initdb and pg_ctl exist."""
    if _pg_bin("initdb") and _pg_bin("pg_ctl"):
        return None
    script = REPO / "scripts" / "test-system-deps.sh"
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600)
    if _pg_bin("initdb") and _pg_bin("pg_ctl"):
        return None
    return (f"PostgreSQL is not installed and {script.name} could not install it "
            f"(exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-300:]})")


def _as_postgres_user(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; run them as the `postgres` system user instead.
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        return [runuser, "-u", "postgres", "--", *cmd] if runuser else ["su", "postgres", "-c",
                                                                         " ".join(cmd)]
    return cmd


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    if os.environ.get("TUNEFORGE_TEST_POSTGRES_URL"):
        yield os.environ["TUNEFORGE_TEST_POSTGRES_URL"]
        return
    reason = _ensure_installed()
    if reason:
        pytest.skip(reason)
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="tuneforge-pg-"))
    data, port = root / "data", _free_port()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    run = dict(capture_output=True, text=True, timeout=120)
    proc = subprocess.run(_as_postgres_user([initdb, "-D", str(data), "-U", "postgres", "-A", "trust",
                                             "--no-sync", "-E", "UTF8"]), **run)
    if proc.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"initdb failed: {proc.stderr[-500:]}")
    options = f"-h 127.0.0.1 -p {port} -k {root} -F -c max_connections=50"
    proc = subprocess.run(_as_postgres_user([pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w",
                                             "-o", options, "start"]), **run)
    if proc.returncode != 0:
        log = (root / "log").read_text(errors="replace")[-800:] if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"pg_ctl start failed: {proc.stderr[-300:]} {log}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), **run)
        shutil.rmtree(root, ignore_errors=True)


def _fresh_postgres_db(url: str) -> str:
    """A new empty database on the server at `url`, so tests never see each other's rows."""
    from sqlalchemy import create_engine, text

    name = "t_" + uuid.uuid4().hex[:12]
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1),
                           isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tuneforge.db'}"
    return _fresh_postgres_db(request.getfixturevalue("postgres_url"))
