"""Blob store: atomic writes, sha256, no partial files visible, no path escapes."""

from __future__ import annotations

import hashlib

import pytest

from tuneforge.store.blobs import BlobError, BlobStore


def test_commit_is_atomic_and_hashes(tmp_path):
    store = BlobStore(tmp_path / "files")
    with store.writer() as w:
        w.write(b"hello ")
        assert not store.exists("file-a")  # nothing visible until commit
        w.write(b"world")
        blob = w.commit("file-a")
    assert blob.path.read_bytes() == b"hello world"
    assert blob.sha256 == hashlib.sha256(b"hello world").hexdigest() and blob.size == 11
    assert list(store.tmp_dir.iterdir()) == []


def test_failed_write_leaves_nothing_behind(tmp_path):
    store = BlobStore(tmp_path / "files")
    with pytest.raises(RuntimeError), store.writer() as w:
        w.write(b"partial")
        raise RuntimeError("client went away")
    assert list(store.tmp_dir.iterdir()) == []
    assert [p.name for p in store.root.iterdir()] == [".tmp"]


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "", ".hidden"])
def test_names_cannot_escape_the_store(tmp_path, name):
    with pytest.raises(BlobError):
        BlobStore(tmp_path).path(name)
