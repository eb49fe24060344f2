"""Streaming multipart/form-data upload: the file part goes straight into a blob writer.

The body is never held in memory: each chunk is parsed as it arrives, the `file` part's bytes are
written to a temp file (hashing as they go), and the upload stops with a 413 the moment it passes the
size limit (a declared Content-Length over it is refused by `api/guard.py` before any byte is
read). Small text fields (`purpose`, `expires_after[...]`) are collected, capped at 64 KiB.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from tuneforge.api.errors import APIError, bad_request
from tuneforge.store.blobs import BlobStore, BlobWriter

MAX_FIELD_BYTES = 64 * 1024
# OpenAI's upload forms have two or three fields; a form with hundreds is an attack on the parser.
MAX_PARTS = 16
# Room for the multipart framing and text fields around the file itself.
FRAMING_ALLOWANCE = 1024 * 1024


def too_large(limit: int) -> APIError:
    return APIError(413, f"The file is larger than this server's upload limit of {limit} bytes. Split it, "
                         f"or raise the limit with TUNEFORGE_MAX_UPLOAD_BYTES (or max_upload_bytes in "
                         f"config.toml).", param="file", code="file_too_large")


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    writer: BlobWriter | None = None


class _Collector:
    """python-multipart callbacks that route each part to the blob writer or a field buffer."""

    def __init__(self, blobs: BlobStore, file_field: str, limit: int):
        self.blobs, self.file_field, self.limit = blobs, file_field, limit
        self.upload = Upload()
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._field: str | None = None
        self._buffer = bytearray()
        self._to_file = False
        self._parts = 0

    def callbacks(self) -> dict:
        return {"on_part_begin": self._part_begin, "on_header_field": self._header_field_data,
                "on_header_value": self._header_value_data, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
                "on_part_end": self._part_end}

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise bad_request(f"The form has more than {MAX_PARTS} parts. Send the 'file' part and the "
                              f"'purpose' field (and optional 'expires_after[...]' fields) only.")
        self._headers, self._buffer, self._field, self._to_file = {}, bytearray(), None, False

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name, self._header_value = bytearray(), bytearray()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self._field = name
        if name == self.file_field:
            if self.upload.writer is not None:
                raise bad_request(f"More than one '{self.file_field}' part: upload one file per request.",
                                  param=self.file_field)
            raw = options.get(b"filename")
            self.upload.filename = raw.decode("utf-8", "replace") if raw is not None else None
            self.upload.writer = self.blobs.writer()
            self._to_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._to_file:
            assert self.upload.writer is not None
            self.upload.writer.write(data[start:end])
            if self.upload.writer.size > self.limit:
                raise too_large(self.limit)
        else:
            self._buffer += data[start:end]
            if len(self._buffer) > MAX_FIELD_BYTES:
                raise bad_request(f"Form field '{self._field}' is longer than {MAX_FIELD_BYTES} bytes.",
                                  param=self._field or None)

    def _part_end(self) -> None:
        if not self._to_file and self._field:
            self.upload.fields[self._field] = self._buffer.decode("utf-8", "replace")


async def receive_upload(request: Request, blobs: BlobStore, *, limit: int,
                         file_field: str = "file") -> Upload:
    """Parse the request body as multipart, streaming the file part into a `BlobWriter`.

    The caller owns `upload.writer`: commit it, or abort it (this function aborts it on any error).
    """
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise bad_request("Upload files as multipart/form-data with a 'file' part and a 'purpose' field "
                          "(curl: -F purpose=fine-tune -F file=@data.jsonl).", param=file_field)
    collector = _Collector(blobs, file_field, limit)
    try:
        parser = MultipartParser(boundary, collector.callbacks())
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        if collector.upload.writer:
            collector.upload.writer.abort()
        raise bad_request(f"The multipart body could not be parsed ({exc}). Send a well-formed "
                          f"multipart/form-data request.", param=file_field) from None
    except BaseException:
        if collector.upload.writer:
            collector.upload.writer.abort()
        raise
    return collector.upload
