"""FileStore on SQLite and PostgreSQL: what the Files API and the job worker rely on."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import text

from tuneforge.store.files import FileStore, new_file_id
from tuneforge.store.paging import UnknownCursor


def _add(store: FileStore, data: bytes, project: str = "p1", purpose: str = "fine-tune",
         name: str = "a.jsonl"):
    return store.add_bytes(data, project=project, filename=name, purpose=purpose)


def test_file_ids_look_like_openai_ids():
    ids = {new_file_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"file-[A-Za-z0-9]{24}", i) for i in ids)


def test_add_records_size_sha256_and_bytes_on_disk(file_store):
    data = b'{"prompt": "hi", "completion": " there"}\n' * 3
    info = _add(file_store, data)
    assert info.bytes == len(data) and info.status == "processed"
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.path.read_bytes() == data
    again = file_store.get(info.id, "p1")
    assert again == info


def test_sqlite_runs_in_wal_mode(db):
    if not db.url.startswith("sqlite"):
        pytest.skip("WAL is a SQLite setting")
    with db.session() as s:
        assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_other_projects_files_are_invisible(file_store):
    info = _add(file_store, b"x", project="p1")
    assert file_store.get(info.id, "p2") is None
    assert file_store.list("p2").items == []
    assert file_store.delete(info.id, "p2") is False
    assert file_store.get(info.id, "p1") is not None
    assert file_store.get(info.id, None) is not None  # the worker looks across projects


def test_list_pages_newest_first_without_gaps_or_repeats(file_store):
    made = [_add(file_store, bytes([i]), name=f"f{i}.jsonl").id for i in range(7)]  # same second
    seen, after = [], None
    while True:
        page = file_store.list("p1", after=after, limit=3)
        seen += [f.id for f in page.items]
        if not page.has_more:
            break
        after = page.items[-1].id
    assert seen == made[::-1]
    asc = file_store.list("p1", order="asc", limit=100)
    assert [f.id for f in asc.items] == made and asc.has_more is False


def test_list_filters_by_purpose(file_store):
    tune = _add(file_store, b"1", purpose="fine-tune")
    _add(file_store, b"2", purpose="batch")
    assert [f.id for f in file_store.list("p1", purpose="fine-tune").items] == [tune.id]


def test_deleted_cursor_still_pages_and_unknown_cursor_raises(file_store):
    a, b, c = (_add(file_store, bytes([i])) for i in range(3))
    first = file_store.list("p1", limit=1)
    assert [f.id for f in first.items] == [c.id]
    assert file_store.delete(c.id, "p1") is True
    rest = file_store.list("p1", after=c.id, limit=10)  # deleting while paging must not break paging
    assert [f.id for f in rest.items] == [b.id, a.id]
    with pytest.raises(UnknownCursor):
        file_store.list("p1", after="file-doesnotexist")


def test_delete_removes_bytes_and_hides_the_file(file_store):
    info = _add(file_store, b"secret")
    assert file_store.delete(info.id, "p1") is True
    assert not info.path.exists()
    assert file_store.get(info.id, "p1") is None
    assert file_store.delete(info.id, "p1") is False


def test_add_path_copies_a_results_file(file_store, tmp_path):
    src = tmp_path / "results.csv"
    src.write_text("step,train_loss\n1,2.5\n")
    info = file_store.add_path(src, project="p1", purpose="fine-tune-results")
    assert info.filename == "results.csv" and info.purpose == "fine-tune-results"
    assert info.path.read_text() == src.read_text() and info.path != src


def test_expired_files_disappear(file_store, monkeypatch):
    with file_store.blobs.writer() as w:
        w.write(b"temp")
        info = file_store.add(w, project="p1", filename="t.jsonl", purpose="batch", expires_after=3600)
    assert info.expires_at == info.created_at + 3600
    assert file_store.get(info.id, "p1") is not None
    import time as time_module

    real = time_module.time
    monkeypatch.setattr("tuneforge.store.files.time.time", lambda: real() + 3601)
    assert file_store.get(info.id, "p1") is None
    assert file_store.list("p1").items == []


def test_hostile_ids_and_names_are_handled_on_every_backend(file_store):
    info = _add(file_store, b"x", name="evil\x00name\n.jsonl")
    assert file_store.get(info.id, "p1").filename == "evilname.jsonl"
    for bad in ("file-\x00", "../../etc/passwd", "file-" + "a" * 500, ""):
        assert file_store.get(bad, "p1") is None
        assert file_store.delete(bad, "p1") is False
    with pytest.raises(UnknownCursor):
        file_store.list("p1", after="file-\x00abc")
