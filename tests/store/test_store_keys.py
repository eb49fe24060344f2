"""API keys on SQLite and PostgreSQL: hashed at rest, scoped to a project, revocable."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tuneforge.store.keys import KeyStore, KeyStoreError, hash_key
from tuneforge.store.tables_files import ApiKey


def test_keys_are_stored_hashed_and_resolve_to_their_project(db):
    keys = KeyStore(db)
    assert keys.any_active() is False
    info, secret = keys.create("alpha")
    assert secret.startswith("sk-tf-") and len(secret) > 40
    with db.session() as s:
        stored = s.scalars(select(ApiKey)).one()
    assert stored.key_hash == hash_key(secret) and secret not in (stored.key_hash, stored.prefix)
    assert keys.any_active() is True
    assert keys.project_for(secret) == "alpha"
    assert keys.project_for(secret + "x") is None
    assert keys.projects() == ["alpha"]
    assert info.prefix == secret[:10]


def test_revoked_key_stops_working(db):
    keys = KeyStore(db)
    info, secret = keys.create("alpha")
    other_info, other = keys.create("alpha")
    assert keys.revoke(info.id).active is False
    assert keys.project_for(secret) is None
    assert keys.project_for(other) == "alpha"
    assert {k.id: k.active for k in keys.list()} == {info.id: False, other_info.id: True}
    with pytest.raises(KeyStoreError, match="keys list"):
        keys.revoke("key_nope")


def test_bad_project_name_is_refused(db):
    with pytest.raises(KeyStoreError, match="invalid project name"):
        KeyStore(db).create("has space")
