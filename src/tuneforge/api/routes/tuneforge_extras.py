"""Read-only extras the web app needs where the OpenAI API has no endpoint (documented in docs/web.md).

`POST /v1/tuneforge/validate` runs the data layer's checks on an uploaded file *without storing it* (or on a
stored file given `file_id`) and returns the findings by line, the statistics and a preview of the first
examples as the trainer tokenizes them, with the trained (loss-bearing) spans marked.
"""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from tuneforge.api.deps import current_project, get_file_store, get_settings_dep
from tuneforge.api.errors import APIError, bad_request, not_found
from tuneforge.api.uploads import Upload, receive_upload
from tuneforge.data.encode import IGNORE, encode_example
from tuneforge.data.io import iter_lines
from tuneforge.models import load_tokenizer
from tuneforge.models.catalog import base_by_name
from tuneforge.settings import Settings
from tuneforge.store.blobs import BlobStore
from tuneforge.store.files import FileStore

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/tuneforge", tags=["tuneforge extras"])

PREVIEW_EXAMPLES = 3
PREVIEW_MAX_TOKENS = 2048


_TOKENIZERS: dict[tuple[str, str], object] = {}


def _tokenizer(name: str, settings: Settings):
    """Tokenizers are slow-ish to load and never change: keep one per (model, home)."""
    key = (name, str(settings.home))
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = load_tokenizer(name, settings)
    return _TOKENIZERS[key]


def _segments(example: dict, tokenizer) -> dict:
    """The example as token runs: [{"text", "trained"}], plus counts, as encode_example sees it."""
    enc = encode_example(example, tokenizer, PREVIEW_MAX_TOKENS)
    runs: list[tuple[bool, list[int]]] = []
    for tok, label in zip(enc.input_ids, enc.labels, strict=True):
        trained = label != IGNORE
        if runs and runs[-1][0] == trained:
            runs[-1][1].append(tok)
        else:
            runs.append((trained, [tok]))
    return {"segments": [{"text": tokenizer.decode(ids), "trained": t} for t, ids in runs],
            "n_tokens": len(enc.input_ids), "n_trained_tokens": enc.n_trained_tokens,
            "truncated": enc.truncated}


def preview(path: Path, tokenizer, skip: set[int], limit: int = PREVIEW_EXAMPLES) -> list[dict]:
    """The first `limit` rows that parse and encode, leaving out the lines in `skip` (those with errors:
    the findings already explain them)."""
    out: list[dict] = []
    for line in iter_lines(path):
        if len(out) >= limit:
            break
        if line.number in skip or not line.text or not line.text.strip():
            continue
        try:
            row = json.loads(line.text)
            if isinstance(row, dict):
                out.append({"line": line.number, **_segments(row, tokenizer)})
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            continue
    return out


def _report(path: Path, filename: str, method: str, tokenizer) -> dict:
    from tuneforge.data.validate import validate_file  # the data layer; imported late to keep startup lean

    report = validate_file(path, tokenizer=tokenizer, method=method)
    # The user's file name, never the server's scratch path.
    body = {**report.to_json(), "file": filename}
    bad_lines = {f.line for f in report.findings if f.severity == "error" and f.line is not None}
    return {"object": "tuneforge.validation", **body, "preview": preview(path, tokenizer, bad_lines)}


async def _options(upload: Upload, settings: Settings) -> tuple[str, object]:
    """The method to check for and the tokenizer to count with, or a 400 naming the bad field."""
    method = upload.fields.get("method", "supervised")
    if method not in ("supervised", "dpo"):
        raise bad_request(f"Unknown method '{method}': use 'supervised' or 'dpo'.", param="method")
    model = upload.fields.get("model") or settings.default_base_model
    # Names only: a hub id would be downloaded and a path probed (the same 404 for all three).
    if base_by_name(model, settings) is None:
        raise APIError(404, f"The model '{model[:200]}' does not exist. Pass a base model name (GET "
                            f"/v1/models lists them), leave 'model' out, or register one on the server "
                            f"with `tuneforge models add NAME PATH`.", param="model", code="model_not_found")
    try:
        return method, await run_in_threadpool(_tokenizer, model, settings)
    except Exception:  # an unprovisioned base; the cause may name server paths, so it stays in the log
        logger.exception("tokenizer for %s", model)
        raise APIError(400, f"Cannot load the tokenizer for model '{model}': it is registered but not "
                            f"provisioned on the server. Pass another base model name (GET /v1/models "
                            f"lists them) or leave 'model' out.", param="model") from None


@router.post("/validate")
async def validate(request: Request, project: str = Depends(current_project),
                   settings: Settings = Depends(get_settings_dep),
                   files: FileStore = Depends(get_file_store)) -> dict:
    """multipart/form-data: `file` (checked, never stored) or `file_id` (a stored file); optional
    `method` (`supervised`|`dpo`, default supervised) and `model` (whose tokenizer counts tokens)."""
    scratch = BlobStore(settings.home / "tmp" / "validate")
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/x-www-form-urlencoded"):  # `curl -d file_id=...`: no file part
        upload = Upload(fields={k: str(v) for k, v in (await request.form()).items()})
    elif kind.startswith("multipart/form-data"):
        upload = await receive_upload(request, scratch, limit=settings.max_upload_bytes)
    else:
        raise bad_request("Send multipart/form-data with a 'file' part (curl: -F file=@data.jsonl) or a "
                          "'file_id' field (-F file_id=file-...).", param="file")
    try:
        method, tokenizer = await _options(upload, settings)
    except BaseException:
        if upload.writer:
            upload.writer.abort()  # nothing of a refused upload stays on disk
        raise
    if upload.writer is not None:
        name = "check-" + secrets.token_hex(8)
        blob = upload.writer.commit(name)
        try:
            return await run_in_threadpool(_report, blob.path, upload.filename or "upload.jsonl", method,
                                           tokenizer)
        finally:
            scratch.delete(name)
    file_id = upload.fields.get("file_id")
    if not file_id:
        raise bad_request("Send a 'file' part to check a file before uploading it, or a 'file_id' field to "
                          "check a stored one.", param="file")
    info = files.get(file_id, project)
    if info is None:
        raise not_found(f"No such file: {file_id}. List your files with GET /v1/files.", param="file_id")
    return await run_in_threadpool(_report, info.path, info.filename, method, tokenizer)
