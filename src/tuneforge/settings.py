"""All of tuneforge's settings in one place.

Precedence: environment variables > config file (`$TUNEFORGE_HOME/config.toml`, or the file named by
`TUNEFORGE_CONFIG`) > defaults. `tuneforge config` prints the result and where each value came from.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path

DEFAULT_BASE_MODEL = "smollm2-135m-instruct"

# OpenAI model names the tutorials use; all resolve to the default base unless the config says otherwise.
DEFAULT_ALIASES = (
    "davinci",
    "curie",
    "babbage",
    "ada",
    "babbage-002",
    "davinci-002",
    "gpt-3.5-turbo",
    "gpt-3.5-turbo-0613",
    "gpt-4o-mini",
    "gpt-4o-mini-2024-07-18",
)


class SettingsError(ValueError):
    """A setting has a value tuneforge cannot use; the message names the setting and its source."""


@dataclass(frozen=True)
class Settings:
    home: Path
    cache_dir: Path
    database_url: str
    default_base_model: str = DEFAULT_BASE_MODEL
    aliases: dict[str, str] = field(default_factory=dict)
    organization: str = "personal"
    max_upload_bytes: int = 512 * 1024 * 1024
    # Any request body but an upload (a JSON body, a form): refused before it is read when larger.
    max_request_bytes: int = 16 * 1024 * 1024
    # Host names the server answers to besides loopback names and the address it listens on ("*": any).
    allowed_hosts: tuple[str, ...] = ()
    # Web origins (scheme://host[:port]) whose pages may call the API, besides those on allowed hosts.
    allowed_origins: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8000
    # Where each value came from ("default", "env TUNEFORGE_HOME", "config /path"), for `tuneforge config`.
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def files_dir(self) -> Path:
        return self.home / "files"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def models_dir(self) -> Path:
        """Fine-tuned models (adapters or full weights) live here; bases live in the cache."""
        return self.home / "models"

    @property
    def registry_path(self) -> Path:
        """User-registered base models (`tuneforge models add`)."""
        return self.home / "bases.json"

    def resolve_alias(self, name: str) -> str:
        return self.aliases.get(name, name)

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for f in fields(self):
            if f.name == "sources":
                continue
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) \
                else value
        return out


_ENV = {
    "home": "TUNEFORGE_HOME",
    "cache_dir": "TUNEFORGE_CACHE",
    "database_url": "TUNEFORGE_DATABASE_URL",
    "default_base_model": "TUNEFORGE_DEFAULT_MODEL",
    "organization": "TUNEFORGE_ORG",
    "max_upload_bytes": "TUNEFORGE_MAX_UPLOAD_BYTES",
    "max_request_bytes": "TUNEFORGE_MAX_REQUEST_BYTES",
    "allowed_hosts": "TUNEFORGE_ALLOWED_HOSTS",
    "allowed_origins": "TUNEFORGE_ALLOWED_ORIGINS",
    "host": "TUNEFORGE_HOST",
    "port": "TUNEFORGE_PORT",
}


def _read_config_file(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML ({exc}). Fix the file or remove it.") from exc
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the config file ({exc.strerror}).") from exc
    section = data.get("tuneforge", data)
    if not isinstance(section, dict):
        raise SettingsError(f"{path}: expected a [tuneforge] table.")
    return section


def _as_int(name: str, raw: object, source: str) -> int:
    try:
        return int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SettingsError(f"{name} from {source} must be an integer, got {raw!r}.") from None


def _as_list(raw: object) -> tuple[str, ...]:
    """A comma-separated string (environment) or a list (config file) of names."""
    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    values: dict[str, object] = {}
    sources: dict[str, str] = {}

    home = Path(env.get("TUNEFORGE_HOME") or Path.home() / ".tuneforge").expanduser()
    sources["home"] = "env TUNEFORGE_HOME" if env.get("TUNEFORGE_HOME") else "default"
    config_path = Path(env.get("TUNEFORGE_CONFIG") or home / "config.toml").expanduser()
    file_values = _read_config_file(config_path) if config_path.is_file() else {}

    aliases = {alias: DEFAULT_BASE_MODEL for alias in DEFAULT_ALIASES}
    for key, value in file_values.items():
        if key == "aliases":
            if not isinstance(value, dict):
                raise SettingsError(f"{config_path}: [tuneforge.aliases] must map alias = \"base model\".")
            aliases.update({str(k): str(v) for k, v in value.items()})
            sources["aliases"] = f"config {config_path}"
        elif key in _ENV and key != "home":
            values[key] = value
            sources[key] = f"config {config_path}"
        else:
            known = ", ".join(sorted(k for k in _ENV if k != "home") + ["aliases"])
            raise SettingsError(f"{config_path}: unknown setting {key!r}. Known settings: {known}.")
    for key, var in _ENV.items():
        if key != "home" and env.get(var):
            values[key] = env[var]
            sources[key] = f"env {var}"

    default_base = str(values.get("default_base_model", DEFAULT_BASE_MODEL))
    if "aliases" not in sources or default_base != DEFAULT_BASE_MODEL:
        # Aliases follow the default base unless the config file pinned them individually.
        pinned = file_values.get("aliases", {}) if isinstance(file_values.get("aliases"), dict) else {}
        aliases.update({a: default_base for a in DEFAULT_ALIASES if a not in pinned})

    cache_dir = Path(str(values.get("cache_dir") or Path.home() / ".cache" / "tuneforge")).expanduser()
    database_url = str(values.get("database_url") or f"sqlite:///{home / 'tuneforge.db'}")
    for key in ("cache_dir", "database_url", "default_base_model", "organization", "max_upload_bytes",
                "max_request_bytes", "allowed_hosts", "allowed_origins", "host", "port", "aliases"):
        sources.setdefault(key, "default")
    return Settings(
        home=home,
        cache_dir=cache_dir,
        database_url=database_url,
        default_base_model=default_base,
        aliases=aliases,
        organization=str(values.get("organization", "personal")),
        max_upload_bytes=_as_int("max_upload_bytes", values.get("max_upload_bytes", 512 * 1024 * 1024),
                                 sources["max_upload_bytes"]),
        max_request_bytes=_as_int("max_request_bytes", values.get("max_request_bytes", 16 * 1024 * 1024),
                                  sources["max_request_bytes"]),
        allowed_hosts=_as_list(values.get("allowed_hosts", ())),
        allowed_origins=_as_list(values.get("allowed_origins", ())),
        host=str(values.get("host", "127.0.0.1")),
        port=_as_int("port", values.get("port", 8000), sources["port"]),
        sources=sources,
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings. Tests that change the environment call `get_settings.cache_clear()`."""
    return load_settings()


def ensure_writable_dir(path: Path, what: str) -> Path:
    """Create `path` if needed and prove it is writable, or fail with a message that names it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        # A unique probe per call: concurrent callers sharing one name raced (one unlinked the other's file).
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-", delete=True) as probe:
            probe.write(b"ok")
    except OSError as exc:
        raise SettingsError(
            f"{what} {path} is not writable ({exc.strerror}). "
            f"Free some space or point it elsewhere (see `tuneforge config`)."
        ) from exc
    return path
