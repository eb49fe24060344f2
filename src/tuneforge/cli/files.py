"""`tuneforge files ...`: upload (validated first), list, get, delete and download files on the server."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from tuneforge.cli.client import ApiKeyOpt, BaseUrlOpt, Client, JsonOpt, make_client, print_json
from tuneforge.cli.errors import fail

app = typer.Typer(help="Upload, list, inspect, download and delete files on the server.",
                  no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)
NOT_FOUND = "See `tuneforge files list` for the ids."


def when(ts: int | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_dataset(path: Path, method: str | None = None) -> None:
    """Fail with the findings (and upload nothing) when `path` is missing or fails validation; `method`
    (supervised, dpo) also checks the file's format fits it (None: any format, e.g. a plain upload)."""
    if not path.is_file():
        fail(f"{path}: no such file; check the path (upload takes a local .jsonl file)")
    from tuneforge.data.validate import validate_file

    report = validate_file(path, method=method)
    problems = [f for f in report.findings if f.severity == "error"]
    if report.ok and not problems:
        return
    table = Table("line", "field", "problem", title=f"{path}: {len(problems)} error(s)", title_justify="left")
    for finding in problems[:20]:
        table.add_row(str(finding.line or ""), finding.field or "", finding.message)
    err_console.print(table)
    more = f" (showing 20 of {len(problems)})" if len(problems) > 20 else ""
    fail(f"{path} failed validation{more}; nothing was uploaded. Fix it with `tuneforge prepare -f {path}`, "
         "or upload anyway with --no-validate")


def find_identical(client: Client, path: Path, purpose: str = "fine-tune") -> dict | None:
    """An already-uploaded file with the same name, size and content as `path` (the API exposes no checksum,
    so candidates matching name and size are downloaded and hashed)."""
    size, digest = path.stat().st_size, None
    for item in client.list_all("files", {"purpose": purpose}):
        if item.get("filename") != path.name or item.get("bytes") != size:
            continue
        digest = digest or sha256_file(path)
        if hashlib.sha256(client.content(f"files/{item['id']}/content")).hexdigest() == digest:
            return item
    return None


def upload_dataset(client: Client, path: Path, *, validate: bool = True, reuse: bool = True,
                   quiet: bool = False, method: str | None = None) -> dict:
    """Validate (for `method`, see check_dataset), then upload `path` (or reuse an identical upload); the
    File object."""
    if validate:
        check_dataset(path, method)
    elif not path.is_file():
        fail(f"{path}: no such file; check the path")
    if reuse and (same := find_identical(client, path)):
        if not quiet:
            err_console.print(f"Reusing {same['id']}: {path.name} was already uploaded with identical "
                              "content.")
        return same
    uploaded = client.upload(path)
    if not quiet:
        err_console.print(f"Uploaded {path} as {uploaded['id']} ({uploaded['bytes']} bytes).")
    return uploaded


def _files_table(items: list[dict]) -> Table:
    width = max((len(f["id"]) for f in items), default=2)
    table = Table(Column("id", no_wrap=True, min_width=width), "filename", "purpose", "bytes", "created",
                  "status")
    for f in items:
        table.add_row(f["id"], f.get("filename", ""), f.get("purpose", ""), str(f.get("bytes", "")),
                      when(f.get("created_at")), f.get("status", ""))
    return table


@app.command("upload")
def upload(
    path: Annotated[Path, typer.Argument(help="Local file, e.g. train.jsonl.")],
    purpose: Annotated[str, typer.Option("--purpose", "-p", help="OpenAI file purpose.")] = "fine-tune",
    no_validate: Annotated[bool, typer.Option("--no-validate", help="Skip the dataset checks.")] = False,
    as_json: JsonOpt = False, base_url: BaseUrlOpt = None, api_key: ApiKeyOpt = None,
) -> None:
    """Validate a dataset and upload it (always a new file; `jobs create -t PATH` reuses identical ones)."""
    client = make_client(base_url, api_key)
    validate = purpose == "fine-tune" and not no_validate
    item = upload_dataset(client, path, validate=validate, reuse=False, quiet=as_json)
    if as_json:
        print_json(item)
    else:
        console.print(f"{item['id']}  (next: `tuneforge jobs create -t {item['id']} "
                      "-m smollm2-135m-instruct`)", soft_wrap=True)


@app.command("list")
def list_files(
    purpose: Annotated[str | None, typer.Option("--purpose", "-p", help="Only files of this purpose.")]
    = None,
    as_json: JsonOpt = False, base_url: BaseUrlOpt = None, api_key: ApiKeyOpt = None,
) -> None:
    """List uploaded files, newest first."""
    items = list(make_client(base_url, api_key).list_all("files", {"purpose": purpose} if purpose else None))
    if as_json:
        print_json({"object": "list", "data": items})
    elif not items:
        console.print("No files yet. Upload one with `tuneforge files upload train.jsonl`.")
    else:
        console.print(_files_table(items))


@app.command("get")
def get(file_id: str, as_json: JsonOpt = False, base_url: BaseUrlOpt = None,
        api_key: ApiKeyOpt = None) -> None:
    """Show one file's details."""
    item = make_client(base_url, api_key).get(f"files/{file_id}", not_found_hint=NOT_FOUND)
    if as_json:
        print_json(item)
    else:
        console.print(_files_table([item]))


@app.command("delete")
def delete(file_id: str, as_json: JsonOpt = False, base_url: BaseUrlOpt = None,
           api_key: ApiKeyOpt = None) -> None:
    """Delete a file from the server."""
    result = make_client(base_url, api_key).delete(f"files/{file_id}", not_found_hint=NOT_FOUND)
    if as_json:
        print_json(result)
    else:
        console.print(f"Deleted {result.get('id', file_id)}.")


@app.command("download")
def download(
    file_id: str,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to save (default: the "
                                                "file's name in the current folder); '-' prints it.")] = None,
    base_url: BaseUrlOpt = None, api_key: ApiKeyOpt = None,
) -> None:
    """Download a file's content (a dataset, or a job's results CSV)."""
    client = make_client(base_url, api_key)
    data = client.content(f"files/{file_id}/content", not_found_hint=NOT_FOUND)
    if output is not None and str(output) == "-":
        typer.echo(data.decode("utf-8", errors="replace"), nl=False)
        return
    target = output or Path(client.get(f"files/{file_id}")["filename"]).name
    Path(target).write_bytes(data)
    console.print(f"Saved {len(data)} bytes to {target}.")
