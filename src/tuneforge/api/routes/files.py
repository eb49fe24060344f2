"""`/v1/files`: upload (multipart, streamed to disk), list, retrieve, delete, and raw content."""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from tuneforge.api.deps import current_project, get_file_store
from tuneforge.api.errors import APIError, bad_request, not_found
from tuneforge.api.pagination import PageParams, cursor_errors, list_page, page_params
from tuneforge.api.schemas.common import error_responses
from tuneforge.api.schemas.files import FileDeleted, FileList, FileObject
from tuneforge.api.uploads import receive_upload
from tuneforge.store.files import OUTPUT_PURPOSES, UPLOAD_PURPOSES, FileInfo, FileStore

router = APIRouter(tags=["files"], responses=error_responses(401))

_EXPIRES_MIN, _EXPIRES_MAX = 3600, 2592000
_LIST_PURPOSES = UPLOAD_PURPOSES + OUTPUT_PURPOSES
FileId = Path(..., description="The file's id (`file-...`).", max_length=200)

_UPLOAD_BODY = {
    "required": True,
    "content": {"multipart/form-data": {"schema": {
        "type": "object",
        "required": ["file", "purpose"],
        "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": "The file; the part's filename becomes the File's `filename`."},
            "purpose": {"type": "string", "enum": list(UPLOAD_PURPOSES)},
            "expires_after[anchor]": {"type": "string", "enum": ["created_at"]},
            "expires_after[seconds]": {"type": "integer", "minimum": _EXPIRES_MIN, "maximum": _EXPIRES_MAX},
        },
        "dependentRequired": {"expires_after[anchor]": ["expires_after[seconds]"],
                              "expires_after[seconds]": ["expires_after[anchor]"]},
    }}},
}


def _not_found(file_id: str) -> APIError:
    return not_found(f"No such File object: {file_id}", param="id")


def _expires_after(fields: dict[str, str]) -> int | None:
    anchor, seconds = fields.get("expires_after[anchor]"), fields.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        what = "Missing 'expires_after[anchor]'" if anchor is None else \
            f"Invalid value for 'expires_after[anchor]': {anchor!r}"
        raise bad_request(f"{what}; the only supported anchor is 'created_at'.",
                          param="expires_after[anchor]")
    digits = (seconds or "").strip()
    # ASCII digits only: str.isdigit() accepts '²', which int() then rejects.
    if not re.fullmatch(r"[0-9]{1,10}", digits) or not _EXPIRES_MIN <= int(digits) <= _EXPIRES_MAX:
        what = "Missing 'expires_after[seconds]'" if seconds is None else \
            f"Invalid value for 'expires_after[seconds]': {seconds!r}"
        raise bad_request(f"{what}; give a whole number of seconds between {_EXPIRES_MIN} and "
                          f"{_EXPIRES_MAX}.", param="expires_after[seconds]")
    return int(digits)


@router.post("/files", response_model=FileObject, openapi_extra={"requestBody": _UPLOAD_BODY},
             responses=error_responses(400, 413), summary="Upload a file")
async def upload_file(request: Request, project: str = Depends(current_project),
                      store: FileStore = Depends(get_file_store)) -> dict:
    limit = request.app.state.settings.max_upload_bytes
    upload = await receive_upload(request, store.blobs, limit=limit)
    writer = upload.writer
    try:
        purpose = upload.fields.get("purpose")
        if purpose is None:
            raise bad_request("Missing required parameter: 'purpose'. Use one of: "
                              + ", ".join(UPLOAD_PURPOSES) + ".", param="purpose")
        if purpose not in UPLOAD_PURPOSES:
            raise bad_request(f"Invalid value for 'purpose': {purpose!r}. Use one of: "
                              + ", ".join(UPLOAD_PURPOSES) + ".", param="purpose")
        if writer is None:
            raise bad_request("Missing required parameter: 'file'. Send the file as a multipart part named "
                              "'file' (curl: -F file=@data.jsonl).", param="file")
        if not upload.filename:
            raise bad_request("The 'file' part has no filename. Send it as a file upload "
                              "(curl: -F file=@data.jsonl), not as a plain form field.", param="file")
        expires_after = _expires_after(upload.fields)
        info = await run_in_threadpool(store.add, writer, project=project, filename=upload.filename,
                                       purpose=purpose, expires_after=expires_after)
    finally:
        if writer is not None:
            writer.abort()  # a no-op once committed
    return info.to_openai()


@router.get("/files", response_model=FileList, responses=error_responses(400), summary="List files")
def list_files(
    purpose: str | None = Query(None, max_length=64, description="Only files with this purpose."),
    page: PageParams = Depends(page_params(default_limit=10000, max_limit=10000)),
    project: str = Depends(current_project),
    store: FileStore = Depends(get_file_store),
) -> dict:
    if purpose is not None and purpose not in _LIST_PURPOSES:
        raise bad_request(f"Invalid value for 'purpose': {purpose!r}. Use one of: "
                          + ", ".join(_LIST_PURPOSES) + ".", param="purpose")
    with cursor_errors():
        result = store.list(project, purpose=purpose, after=page.after, limit=page.limit, order=page.order)
    return list_page([f.to_openai() for f in result.items], result.has_more, with_ids=True)


def _get(store: FileStore, file_id: str, project: str) -> FileInfo:
    info = store.get(file_id, project)
    if info is None:
        raise _not_found(file_id)
    return info


@router.get("/files/{file_id}", response_model=FileObject, responses=error_responses(404),
            summary="Retrieve a file's metadata")
def retrieve_file(file_id: str = FileId, project: str = Depends(current_project),
                  store: FileStore = Depends(get_file_store)) -> dict:
    return _get(store, file_id, project).to_openai()


@router.delete("/files/{file_id}", response_model=FileDeleted, responses=error_responses(404),
               summary="Delete a file")
def delete_file(file_id: str = FileId, project: str = Depends(current_project),
                store: FileStore = Depends(get_file_store)) -> dict:
    if not store.delete(file_id, project):
        raise _not_found(file_id)
    return {"id": file_id, "object": "file", "deleted": True}


@router.get("/files/{file_id}/content", responses={200: {"content": {"application/octet-stream": {}},
                                                         "description": "The file's bytes"},
                                                   **error_responses(404)},
            response_class=FileResponse, summary="Download a file's bytes")
def file_content(file_id: str = FileId, project: str = Depends(current_project),
                 store: FileStore = Depends(get_file_store)) -> FileResponse:
    info = _get(store, file_id, project)
    if not info.path.is_file():
        raise APIError(404, f"The bytes of {file_id} are missing from {info.path.parent} on the server; "
                            f"upload the file again.", param="id")
    return FileResponse(info.path, media_type="application/octet-stream",
                        filename=info.filename, content_disposition_type="attachment")
