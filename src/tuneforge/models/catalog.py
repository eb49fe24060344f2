"""Which base models exist and where each comes from.

Built-in bases are listed in `builtin.json` (data, not code). Users register more with
`tuneforge models add NAME PATH`; those live in `$TUNEFORGE_HOME/bases.json`. A name resolves through the
alias table first, then the built-ins, then the registry, then as a local path or a hub id.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from tuneforge.models.chat_templates import folder_has_chat_template
from tuneforge.settings import Settings, ensure_writable_dir

SourceKind = Literal["wheel_gguf", "gguf", "hf_folder", "hub"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class UnknownModelError(LookupError):
    """No base model, alias or path by that name; the message lists what is known."""


@dataclass(frozen=True)
class BaseModelSpec:
    name: str
    kind: SourceKind
    # wheel_gguf: "package/file.gguf" (or its pieces, "package/file.part00 + ..."); gguf: path to the file;
    # hf_folder: path; hub: the hub id.
    source: str
    description: str = ""
    sha256: str | None = None  # of the source GGUF, when known
    context_length: int | None = None
    builtin: bool = False

    def to_json(self) -> dict:
        return asdict(self)


def builtin_bases() -> dict[str, BaseModelSpec]:
    raw = json.loads(resources.files("tuneforge.models").joinpath("builtin.json").read_text("utf-8"))
    return {item["name"]: BaseModelSpec(builtin=True, **item) for item in raw}


def registered_bases(settings: Settings) -> dict[str, BaseModelSpec]:
    path = settings.registry_path
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UnknownModelError(f"{path}: the base-model registry is unreadable ({exc}). "
                                "Fix or delete it, then re-add your models.") from exc
    return {item["name"]: BaseModelSpec(**item) for item in raw}


def all_bases(settings: Settings) -> dict[str, BaseModelSpec]:
    return {**builtin_bases(), **registered_bases(settings)}


def _spec_for_path(name: str, path: Path) -> BaseModelSpec:
    if path.is_file() and path.suffix == ".gguf":
        return BaseModelSpec(name=name, kind="gguf", source=str(path.resolve()))
    if path.is_dir() and (path / "config.json").is_file():
        if not folder_has_chat_template(path):
            raise UnknownModelError(
                f"{path}: its tokenizer has no chat template, which chat fine-tuning and "
                "/v1/chat/completions need. Add the model family's turn format as chat_template.jinja in "
                "that folder (or register the instruction-tuned model, or the model's .gguf file: tuneforge "
                "supplies the format of the families it knows when it converts one)."
            )
        return BaseModelSpec(name=name, kind="hf_folder", source=str(path.resolve()))
    if path.is_dir() and (ggufs := sorted(path.glob("*.gguf"))):
        return BaseModelSpec(name=name, kind="gguf", source=str(ggufs[0].resolve()))
    raise UnknownModelError(
        f"{path}: not a model. Expected a Hugging Face model folder (with config.json) or a .gguf file."
    )


def base_by_name(name: str, settings: Settings) -> BaseModelSpec | None:
    """The base registered under `name` or its alias (never a path or a hub id), or None."""
    return all_bases(settings).get(settings.resolve_alias(name))


def resolve_base(name: str, settings: Settings) -> BaseModelSpec:
    """Turn a model name, alias, local path or hub id into a spec, or raise with the known names."""
    target = settings.resolve_alias(name)
    bases = all_bases(settings)
    if target in bases:
        return bases[target]
    path = Path(target).expanduser()
    if path.exists():
        return _spec_for_path(path.name, path)
    if _HUB_ID.match(target) and not target.startswith(("ft:", ".", "/")):
        return BaseModelSpec(name=target, kind="hub", source=target)
    known = ", ".join(sorted(bases))
    aliases = ", ".join(sorted(settings.aliases))
    raise UnknownModelError(
        f"Unknown model {name!r}. Known base models: {known}. Aliases: {aliases}. "
        "Register a local model with `tuneforge models add NAME PATH`."
    )


def register_base(name: str, path_or_hub_id: str, settings: Settings, description: str = "") -> BaseModelSpec:
    """Add a user base model to the registry (atomically rewritten)."""
    if not _NAME.match(name):
        raise ValueError(f"Invalid model name {name!r}: use lower-case letters, digits, '.', '_' or '-'.")
    if name in builtin_bases() or name in settings.aliases:
        raise ValueError(f"{name!r} is already a built-in model or alias; choose another name.")
    path = Path(path_or_hub_id).expanduser()
    if path.exists():
        spec = _spec_for_path(name, path)
    elif _HUB_ID.match(path_or_hub_id):
        spec = BaseModelSpec(name=name, kind="hub", source=path_or_hub_id)
    else:
        raise UnknownModelError(
            f"{path_or_hub_id}: no such file or folder, and not a hub id like 'org/model'."
        )
    spec = BaseModelSpec(**{**spec.to_json(), "description": description})
    bases = registered_bases(settings)
    bases[name] = spec
    _write_registry(settings, bases)
    return spec


def unregister_base(name: str, settings: Settings) -> bool:
    bases = registered_bases(settings)
    if name not in bases:
        return False
    del bases[name]
    _write_registry(settings, bases)
    return True


def _write_registry(settings: Settings, bases: dict[str, BaseModelSpec]) -> None:
    ensure_writable_dir(settings.home, "TUNEFORGE_HOME")
    tmp = settings.registry_path.with_suffix(".tmp")
    tmp.write_text(json.dumps([b.to_json() for b in bases.values()], indent=2), "utf-8")
    os.replace(tmp, settings.registry_path)
