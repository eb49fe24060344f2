"""Shared fixtures: an isolated TUNEFORGE_HOME per test session and the tiny test model."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny_model import TINY_NAME, build_tiny_model  # noqa: E402

# Everything a test writes goes to a throwaway home; the model cache (provisioned by `make setup`) is
# shared and only read. Subprocesses (job workers, the CLI) inherit these variables.
_SESSION_HOME = Path(os.environ.get("TUNEFORGE_TEST_HOME", "")) if os.environ.get("TUNEFORGE_TEST_HOME") \
    else None


@pytest.fixture(scope="session", autouse=True)
def tuneforge_home(tmp_path_factory) -> Path:
    home = _SESSION_HOME or tmp_path_factory.mktemp("tuneforge-home")
    os.environ["TUNEFORGE_HOME"] = str(home)
    os.environ.pop("TUNEFORGE_DATABASE_URL", None)
    os.environ.pop("TUNEFORGE_CONFIG", None)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tuneforge.settings import get_settings

    get_settings.cache_clear()
    return home


@pytest.fixture(scope="session")
def settings(tuneforge_home):
    from tuneforge.settings import get_settings

    get_settings.cache_clear()
    return get_settings()


@pytest.fixture(scope="session")
def base_folder(settings) -> Path:
    """The provisioned built-in base model folder (made by `make setup`)."""
    from tuneforge.models import base_model_folder

    return base_model_folder(settings.default_base_model, settings)


@pytest.fixture(scope="session")
def tiny_model(settings, base_folder) -> str:
    """Name of the tiny test model, registered as a base model in the session's home."""
    from tuneforge.models.catalog import register_base, registered_bases

    folder = build_tiny_model(settings.cache_dir, base_folder)
    if TINY_NAME not in registered_bases(settings):
        register_base(TINY_NAME, str(folder), settings, description="tiny random Llama for tests")
    return TINY_NAME


@pytest.fixture(scope="session")
def tiny_model_dir(settings, tiny_model) -> Path:
    from tuneforge.models import base_model_folder

    return base_model_folder(tiny_model, settings)


@pytest.fixture(scope="session")
def openai028() -> Path:
    """The tutorials' 0.x `openai` CLI, in its own venv cached under ~/.cache/tuneforge/test-venvs (made
    with pip on first use); tests that need it skip, saying why, only when pip cannot install it."""
    import subprocess

    venv = Path.home() / ".cache" / "tuneforge" / "test-venvs" / "openai028"
    cli = venv / "bin" / "openai"
    if not cli.exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True, capture_output=True)
        packages = ["openai==0.28.1", "pandas", "numpy"]
        pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *packages], capture_output=True,
                             text=True, timeout=600)
        if pip.returncode != 0 or not cli.exists():
            pytest.skip(f"pip could not install openai==0.28.1: {(pip.stderr or pip.stdout)[-300:]}")
    return cli


@pytest.fixture(scope="session")
def tokenizer(base_folder):
    """The real SmolLM2 tokenizer (same as the tiny model's)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_folder)


def pytest_collection_modifyitems(items) -> None:
    """Mark what needs PostgreSQL (`-m "not postgres"` skips it): users of `postgres_url`, and the
    `postgres` case of the `database_url` fixture (tests/pg.py)."""
    for item in items:
        spec = getattr(item, "callspec", None)
        if "postgres_url" in item.fixturenames or (spec and spec.params.get("database_url") == "postgres"):
            item.add_marker(pytest.mark.postgres)
