"""`tuneforge models ...`: base models on this machine (pull, list, add, remove, check)."""

from __future__ import annotations

import json
import sys
import time

import typer
from rich.console import Console
from rich.table import Table

from tuneforge.models.catalog import all_bases, register_base, resolve_base, unregister_base
from tuneforge.models.provision import cache_folder, folder_size, provision, verify_folder
from tuneforge.settings import get_settings

app = typer.Typer(help="Base models: provision, list, register and check them.", no_args_is_help=True)
console = Console()


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _base_rows() -> list[dict]:
    settings = get_settings()
    rows = []
    for spec in all_bases(settings).values():
        if spec.kind in ("wheel_gguf", "gguf"):
            folder = cache_folder(spec, settings)
            ready = (folder / "tuneforge-manifest.json").is_file()
        elif spec.kind == "hf_folder":
            from pathlib import Path

            folder, ready = Path(spec.source), Path(spec.source, "config.json").is_file()
        else:
            folder, ready = None, False
        rows.append({
            "id": spec.name,
            "type": "base",
            "source": spec.kind,
            "builtin": spec.builtin,
            "provisioned": ready,
            "size_bytes": folder_size(folder) if ready and folder else None,
            "path": str(folder) if folder else spec.source,
            "description": spec.description,
        })
    return rows


@app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """List base models, the OpenAI aliases that map to them, and fine-tuned models."""
    settings = get_settings()
    rows = _base_rows()
    aliases = [{"id": a, "type": "alias", "target": t} for a, t in sorted(settings.aliases.items())]
    fine_tuned = server_fine_tuned()
    if as_json:
        print(json.dumps({"bases": rows, "aliases": aliases, "fine_tuned": fine_tuned}, indent=2))
        return
    table = Table("model", "kind", "size", "where", title="Base models")
    for row in rows:
        size = _human_size(row["size_bytes"]) if row["size_bytes"] else "not provisioned"
        table.add_row(row["id"], row["source"], size, row["path"])
    console.print(table)
    alias_table = Table("alias", "resolves to", title="Aliases (OpenAI model names)")
    for alias in aliases:
        alias_table.add_row(alias["id"], alias["target"])
    console.print(alias_table)
    print_fine_tuned(fine_tuned)


@app.command("pull")
def pull(
    name: str = typer.Argument("smollm2-135m-instruct", help="Base model name, alias or hub id."),
    force: bool = typer.Option(False, "--force", help="Rebuild the cached copy even if it verifies."),
) -> None:
    """Provision a base model into the model cache (convert GGUF once, verify checksums)."""
    settings = get_settings()
    spec = resolve_base(name, settings)
    started = time.monotonic()
    folder = provision(spec, settings, progress=_progress, force=force)
    ok, reason = verify_folder(folder) if spec.kind in ("wheel_gguf", "gguf") else (True, "ok")
    status = "verified" if ok else f"NOT verified ({reason})"
    console.print(f"{spec.name}: ready at {folder} ({status}, {time.monotonic() - started:.1f} s)",
                  soft_wrap=True)


@app.command("add")
def add(
    name: str = typer.Argument(..., help="A short name for the model, e.g. qwen2.5-0.5b."),
    path: str = typer.Argument(..., help="A Hugging Face model folder, a .gguf file, or a hub id."),
    description: str = typer.Option("", "--description", "-d"),
) -> None:
    """Register a local model folder, a GGUF file or a hub id as a base model."""
    try:
        spec = register_base(name, path, get_settings(), description)
    except ValueError as exc:
        from tuneforge.cli.errors import fail

        fail(str(exc))
        return
    console.print(f"Registered {spec.name} ({spec.kind}: {spec.source}). "
                  f"Check it with `tuneforge models check {spec.name}`.")


@app.command("remove")
def remove(name: str = typer.Argument(..., help="A registered base model.")) -> None:
    """Unregister a base model (its files are left where they are)."""
    if not unregister_base(name, get_settings()):
        from tuneforge.cli.errors import fail

        fail(f"{name!r} is not a registered base model (built-ins cannot be removed). "
             "See `tuneforge models list`.")
    console.print(f"Removed {name}.")


@app.command("check")
def check(
    name: str = typer.Argument("smollm2-135m-instruct", help="Base model name, alias or path."),
    prompt: str = typer.Option("What is the capital of France?", "--prompt", "-p"),
    max_tokens: int = typer.Option(20, "--max-tokens", "-n"),
) -> None:
    """Load a base model and greedily answer one chat prompt: proves it is usable here."""
    import torch

    from tuneforge.models.loading import load_base_model, load_tokenizer

    settings = get_settings()
    started = time.monotonic()
    tokenizer = load_tokenizer(name, settings)
    model = load_base_model(name, settings)
    loaded = time.monotonic() - started
    messages = [{"role": "user", "content": prompt}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)
    ids = {k: v.to(model.device) for k, v in ids.items()}
    started = time.monotonic()
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=max_tokens, do_sample=False)
    new_tokens = out[0, ids["input_ids"].shape[1]:]
    elapsed = time.monotonic() - started
    console.print(f"[bold]{name}[/] loaded in {loaded:.1f} s; {len(new_tokens)} tokens in {elapsed:.1f} s")
    console.print(f"[dim]user:[/] {prompt}")
    console.print(f"[dim]assistant:[/] {tokenizer.decode(new_tokens, skip_special_tokens=True).strip()}")


# --- Fine-tuned models: the server's `/v1/models` (get, delete) and local export. ---------------------------

from pathlib import Path  # noqa: E402
from typing import Annotated  # noqa: E402

from tuneforge.cli.client import (  # noqa: E402
    APIFailure,
    ApiKeyOpt,
    BaseUrlOpt,
    JsonOpt,
    ServerDown,
    make_client,
    print_json,
)
from tuneforge.cli.errors import user_error  # noqa: E402
from tuneforge.models.export import FORMATS, ExportError  # noqa: E402
from tuneforge.models.loading import ModelLookupError  # noqa: E402

user_error(ExportError)
user_error(ModelLookupError)
_MODEL_HINT = "See `tuneforge models list` for the fine-tuned models."


def _is_fine_tuned(model_id: str) -> bool:
    return model_id.startswith("ft:") or ":ft-" in model_id


def server_fine_tuned() -> list[dict] | None:
    """The fine-tuned models the server (OPENAI_BASE_URL or the default URL) lists; None when none runs."""
    try:
        client = make_client(timeout=3.0)
        return [m for m in client.get("models").get("data", []) if _is_fine_tuned(m.get("id", ""))]
    except (ServerDown, APIFailure):
        return None


def print_fine_tuned(models: list[dict] | None) -> None:
    if models is None:
        console.print("[dim]Fine-tuned models: no server running (start one with `tuneforge serve`).[/]")
        return
    table = Table("model", "created", "owned by", title="Fine-tuned models (from the server)")
    for m in models:
        table.add_row(m["id"], time.strftime("%Y-%m-%d %H:%M", time.localtime(m.get("created", 0))),
                      str(m.get("owned_by", "")))
    console.print(table if models else "No fine-tuned models yet: `tuneforge jobs create -t train.jsonl`.")


@app.command("get")
def get_model(model_id: str, as_json: JsonOpt = False, base_url: BaseUrlOpt = None,
              api_key: ApiKeyOpt = None) -> None:
    """Show one model as the server reports it (base, alias, fine-tuned or checkpoint)."""
    model = make_client(base_url, api_key).get(f"models/{model_id}", not_found_hint=_MODEL_HINT)
    if as_json:
        print_json(model)
        return
    table = Table("field", "value", show_header=False, title=model.get("id"))
    for key, value in model.items():
        table.add_row(key, str(value))
    console.print(table)


@app.command("delete")
def delete_model(model_id: str, as_json: JsonOpt = False, base_url: BaseUrlOpt = None,
                 api_key: ApiKeyOpt = None) -> None:
    """Delete a fine-tuned model and its weights from the server (base models are `models remove`)."""
    result = make_client(base_url, api_key).delete(f"models/{model_id}", not_found_hint=_MODEL_HINT)
    if as_json:
        print_json(result)
    else:
        console.print(f"Deleted {result.get('id', model_id)}.")


@app.command("export")
def export(
    model_id: Annotated[str, typer.Argument(help="A fine-tuned model id (ft:...) or a model folder.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="merged (a Hugging Face folder), adapter (the "
                                     "LoRA adapter) or gguf (one file for llama.cpp).")] = "merged",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Target folder (.gguf file for gguf); "
                                                "default ./export-<suffix>-<format>.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the target if it exists.")] = False,
) -> None:
    """Export a fine-tuned model from this machine's store (TUNEFORGE_HOME) for use outside tuneforge."""
    from tuneforge.models.export import export_model

    if fmt not in FORMATS:
        from tuneforge.cli.errors import fail

        fail(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    stem = model_id.rstrip("/").replace(":", "-").split("/")[-1]
    target = output or Path(f"export-{stem}-{fmt}" + (".gguf" if fmt == "gguf" else ""))
    started = time.monotonic()
    written = export_model(model_id, fmt, target, get_settings(), overwrite=force)
    console.print(f"Exported {model_id} as {fmt} to {written} ({time.monotonic() - started:.1f} s)",
                  soft_wrap=True, highlight=False)
