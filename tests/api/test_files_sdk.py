"""The Files API through the current `openai` SDK against a real uvicorn server."""

from __future__ import annotations

import hashlib
import re

import httpx
import openai
import pytest
from openai import OpenAI

LINE = b'{"messages": [{"role": "user", "content": "q%d"}, {"role": "assistant", "content": "a"}]}\n'
TRAIN = b"".join(LINE % i for i in range(20))


@pytest.fixture
def client(server) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="anything", max_retries=0)


def test_upload_retrieve_content_delete(client, tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(TRAIN)
    with path.open("rb") as fh:
        created = client.files.create(file=fh, purpose="fine-tune")
    assert re.fullmatch(r"file-[A-Za-z0-9]{24}", created.id)
    assert (created.object, created.bytes, created.filename, created.purpose, created.status) == \
        ("file", len(TRAIN), "train.jsonl", "fine-tune", "processed")
    assert client.files.wait_for_processing(created.id).status == "processed"

    got = client.files.retrieve(created.id)
    assert got.model_dump() == created.model_dump()
    content = client.files.content(created.id)
    assert content.content == TRAIN
    content.write_to_file(tmp_path / "back.jsonl")
    assert hashlib.sha256((tmp_path / "back.jsonl").read_bytes()).digest() == hashlib.sha256(TRAIN).digest()

    deleted = client.files.delete(created.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (created.id, "file", True)
    with pytest.raises(openai.NotFoundError) as err:
        client.files.retrieve(created.id)
    assert err.value.body == {"message": f"No such File object: {created.id}",
                              "type": "invalid_request_error", "param": "id", "code": None}
    with pytest.raises(openai.NotFoundError):
        client.files.content(created.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(created.id)


def test_list_is_newest_first_and_auto_paginates(client):
    ids = [client.files.create(file=(f"f{i}.jsonl", b"x" * i), purpose="fine-tune").id for i in range(5)]
    batch = client.files.create(file=("b.jsonl", b"{}"), purpose="batch").id
    page = client.files.list(limit=2, purpose="fine-tune")
    assert [f.id for f in page.data] == ids[::-1][:2] and page.has_more is True
    assert (page.first_id, page.last_id) == (ids[4], ids[3])
    assert [f.id for f in client.files.list(limit=2, purpose="fine-tune")] == ids[::-1]  # follows `after`
    assert [f.id for f in client.files.list(order="asc")] == ids + [batch]
    assert [f.id for f in client.files.list(purpose="batch")] == [batch]
    last = client.files.list(after=ids[1], purpose="fine-tune")
    assert [f.id for f in last.data] == [ids[0]] and last.has_more is False
    # Deleting while paging (a common cleanup loop) must not break the pages that follow.
    assert sum(client.files.delete(f.id).deleted for f in client.files.list(limit=2)) == 6
    assert client.files.list().data == []


def test_bad_parameters_are_400s_naming_the_param(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("a.jsonl", b"{}"), purpose="homework")  # type: ignore[arg-type]
    assert err.value.param == "purpose" and "fine-tune" in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        client.files.list(limit=0)
    assert err.value.param == "limit"
    with pytest.raises(openai.BadRequestError) as err:
        client.files.list(after="file-nonexistent")
    assert err.value.param == "after"
    with pytest.raises(openai.BadRequestError) as err:
        client.files.list(order="sideways")  # type: ignore[arg-type]
    assert err.value.param == "order"


def test_expires_after_is_accepted_and_checked(client):
    f = client.files.create(file=("a.jsonl", b"{}"), purpose="batch",
                            expires_after={"anchor": "created_at", "seconds": 3600})
    assert f.expires_at == f.created_at + 3600
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("a.jsonl", b"{}"), purpose="batch",
                            expires_after={"anchor": "created_at", "seconds": 5})
    assert err.value.param == "expires_after[seconds]"


def _leftovers(settings) -> list:
    files = settings.files_dir  # absent when the request was refused before the store was touched
    return [p for p in files.rglob("*") if p.is_file()] if files.exists() else []


def test_oversized_upload_is_413_and_leaves_nothing(make_settings, start_server):
    live = start_server(make_settings(max_upload_bytes=4096))
    client = OpenAI(base_url=live.base_url, api_key="anything", max_retries=0)
    ok = client.files.create(file=("ok.jsonl", b"x" * 4096), purpose="fine-tune")  # exactly the limit
    assert ok.bytes == 4096
    with pytest.raises(openai.APIStatusError) as err:
        client.files.create(file=("big.jsonl", b"x" * 4097), purpose="fine-tune")
    assert err.value.status_code == 413 and err.value.code == "file_too_large" and err.value.param == "file"
    assert "4096 bytes" in err.value.message

    def chunks():  # no Content-Length: the server must stop mid-stream, not trust a header
        yield b"--B\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n"
        yield b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.jsonl\"\r\n\r\n"
        for _ in range(8):
            yield b"y" * 1024
        yield b"\r\n--B--\r\n"

    r = httpx.post(live.base_url + "/files", content=chunks(),
                   headers={"Content-Type": "multipart/form-data; boundary=B"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"
    assert [f.id for f in client.files.list()] == [ok.id]
    assert [p.name for p in _leftovers(live.settings)] == [ok.id]


def test_malformed_uploads_are_400s(server):
    url = server.base_url + "/files"
    r = httpx.post(url, json={"purpose": "fine-tune"})
    assert r.status_code == 400 and "multipart/form-data" in r.json()["error"]["message"]
    r = httpx.post(url, data={"purpose": "fine-tune"}, files={"other": ("a.jsonl", b"{}")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    r = httpx.post(url, files={"file": ("a.jsonl", b"{}")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "purpose"
    r = httpx.post(url, data={"purpose": "fine-tune", "file": "not a file"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    assert [p for p in _leftovers(server.settings)] == []


def test_declared_oversized_upload_is_refused_before_reading(make_settings, start_server):
    live = start_server(make_settings(max_upload_bytes=4096))
    client = OpenAI(base_url=live.base_url, api_key="anything", max_retries=0)
    with pytest.raises(openai.APIStatusError) as err:  # Content-Length alone is enough to refuse it
        client.files.create(file=("big.jsonl", b"z" * (3 * 1024 * 1024)), purpose="fine-tune")
    assert err.value.status_code == 413 and err.value.code == "file_too_large"
    assert _leftovers(live.settings) == []


def test_uploads_stream_to_disk_without_buffering(server):
    import tracemalloc

    size, chunk = 24 * 1024 * 1024, b"0123456789abcdef" * 4096  # 24 MiB in 64 KiB chunks

    def body():
        yield b"--B\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
        yield b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\r\n"
        for _ in range(size // len(chunk)):
            yield chunk
        yield b"\r\n--B--\r\n"

    tracemalloc.start()
    try:
        r = httpx.post(server.base_url + "/files", content=body(), timeout=120,
                       headers={"Content-Type": "multipart/form-data; boundary=B"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status_code == 200 and r.json()["bytes"] == size
    assert peak < 8 * 1024 * 1024, f"peak Python allocation {peak / 2**20:.1f} MiB for a 24 MiB upload"
    expected = hashlib.sha256(chunk * (size // len(chunk))).hexdigest()
    from tuneforge.store.files import FileStore

    info = FileStore.from_settings(server.settings, server.app.state.db).get(r.json()["id"], "default")
    assert info.sha256 == expected and info.path.stat().st_size == size


def test_nul_characters_are_400s_naming_the_field(server):
    """PostgreSQL cannot store NUL; the request gate refuses it for every route, naming the field."""
    r = httpx.post(server.base_url + "/files", json={"purpose": "x", "meta": [{"k": "a\x00"}]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "meta.0.k"
    r = httpx.get(server.base_url + "/files/file-abc%00def")
    assert r.status_code == 400 and "NUL" in r.json()["error"]["message"]
    r = httpx.get(server.base_url + "/files", params={"after": "file-\x00"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "after"
    literal = httpx.post(server.base_url + "/files", json={"purpose": "\\u0000"})  # backslash, not NUL
    assert literal.status_code == 400 and "multipart/form-data" in literal.json()["error"]["message"]
