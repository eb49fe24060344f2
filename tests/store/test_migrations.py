"""Schema migrations (Alembic): a database the last release left behind (create_all, no
alembic_version) is upgraded in place keeping every row; the revisions match the table models."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, inspect, select

from tuneforge.jobs.events import add_event
from tuneforge.jobs.service import get_job
from tuneforge.models.registry import list_models, lookup_model
from tuneforge.store import migrations, tables  # noqa: F401  (registers every table)
from tuneforge.store.blobs import BlobStore
from tuneforge.store.db import Base, Database
from tuneforge.store.files import FileStore
from tuneforge.store.keys import KeyStore
from tuneforge.store.tables_jobs import Checkpoint, FineTunedModel, Job, JobEvent

JOB_ID = "ftjob-migrate0001"
MODEL_ID = "ft:tiny-llama:personal::migrate1"


def _last_release_db(url: str, tmp_path) -> dict:
    """A database exactly as the release before migrations made it, with a row in every table."""
    db = Database(url)
    Base.metadata.create_all(db.engine)  # what that release's init_schema did
    files = FileStore(db, BlobStore(tmp_path / "files"))
    info = files.add_bytes(b'{"messages": []}\n', project="acme", filename="train.jsonl", purpose="fine-tune")
    key, secret = KeyStore(db).create("acme")
    with db.session() as s:
        s.add(Job(id=JOB_ID, project="acme", model="tiny-llama", base_model="tiny-llama", status="succeeded",
                  created_at=1000, updated_at=1001, training_file=info.id, hyperparameters={"n_epochs": 2},
                  seed=7, organization="personal", result_files=[], attempts=1, resume=False,
                  fine_tuned_model=MODEL_ID))
    with db.session() as s:
        add_event(s, JOB_ID, "Fine-tuning job started")
        add_event(s, JOB_ID, "Step 1/2: training loss=1.00", type="metrics", data={"step": 1}, step=1)
        s.add(Checkpoint(id="ftckpt-migrate1", job_id=JOB_ID, created_at=1001, step_number=1,
                         fine_tuned_model_checkpoint=MODEL_ID + ":ckpt-step-1", path="/m/ckpt1",
                         metrics={"train_loss": 1.0}))
        s.add(FineTunedModel(id=MODEL_ID, project="acme", job_id=JOB_ID, base_model="tiny-llama",
                             path="/m/final", method="lora", kind="final", created=1002, owned_by="personal"))
    assert not inspect(db.engine).has_table("alembic_version")
    db.dispose()
    return {"file": info, "key": key, "secret": secret}


def _assert_rows_found(db: Database, made: dict, tmp_path) -> None:
    files = FileStore(db, BlobStore(tmp_path / "files"))
    found = files.get(made["file"].id, "acme")
    assert found is not None and found.filename == "train.jsonl" and found.bytes == made["file"].bytes
    assert [f.id for f in files.list("acme").items] == [made["file"].id]
    assert BlobStore(tmp_path / "files").path(found.id).read_bytes() == b'{"messages": []}\n'
    assert KeyStore(db).project_for(made["secret"]) == "acme"
    assert [k.id for k in KeyStore(db).list()] == [made["key"].id]
    job = get_job(db, JOB_ID, "acme")
    assert (job.status, job.hyperparameters, job.fine_tuned_model) == ("succeeded", {"n_epochs": 2}, MODEL_ID)
    with db.session() as s:
        events = s.scalars(select(JobEvent).where(JobEvent.job_id == JOB_ID).order_by(JobEvent.seq)).all()
        assert [(e.message, e.step) for e in events] == [("Fine-tuning job started", None),
                                                         ("Step 1/2: training loss=1.00", 1)]
        checkpoints = s.scalars(select(Checkpoint).where(Checkpoint.job_id == JOB_ID)).all()
        assert [(c.id, c.step_number, c.metrics) for c in checkpoints] == [("ftckpt-migrate1", 1,
                                                                            {"train_loss": 1.0})]
    assert lookup_model(db, MODEL_ID, "acme") is not None
    assert [m.id for m in list_models(db, "acme")] == [MODEL_ID]


def _revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return migrations.current_revision(conn)


def test_last_release_database_is_upgraded_keeping_every_row(database_url, tmp_path):
    made = _last_release_db(database_url, tmp_path)
    db = Database(database_url)
    try:
        db.init_schema()
        assert _revision(db) == migrations.head_revision()
        _assert_rows_found(db, made, tmp_path)
        # New rows still get fresh autoincrement keys after the upgrade.
        with db.session() as s:
            add_event(s, JOB_ID, "after the upgrade")
        with db.session() as s:
            seqs = s.scalars(select(JobEvent.seq).where(JobEvent.job_id == JOB_ID)).all()
        assert len(set(seqs)) == 3
    finally:
        db.dispose()


def test_second_init_schema_changes_nothing(database_url):
    db = Database(database_url)
    try:
        db.init_schema()
        statements: list[str] = []
        event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        db.init_schema()
        ddl = [s for s in statements if s.lstrip().upper().startswith(("CREATE", "ALTER", "DROP", "INSERT",
                                                                       "UPDATE"))]
        assert ddl == []
        assert _revision(db) == migrations.head_revision()
    finally:
        db.dispose()


def test_migrations_match_the_table_models(database_url):
    """Fails when a column or table is added to store/tables_*.py without a revision."""
    db = Database(database_url)
    try:
        db.init_schema()
        with db.engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                     Base.metadata)
        assert diffs == [], f"store/tables_*.py and store/migrations/versions/ disagree: {diffs}"
    finally:
        db.dispose()


def test_processes_starting_together_create_the_schema_once(database_url):
    # Each Database has its own engine, as a server and a worker in two processes do.
    dbs = [Database(database_url) for _ in range(3)]
    barrier, errors = threading.Barrier(len(dbs)), []

    def start(db: Database) -> None:
        barrier.wait(timeout=30)
        try:
            db.init_schema()
        except Exception as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(db,)) for db in dbs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert errors == []
        assert _revision(dbs[0]) == migrations.head_revision()
    finally:
        for db in dbs:
            db.dispose()


def test_older_release_missing_tables_is_completed(database_url, tmp_path):
    db = Database(database_url)
    try:
        Base.metadata.tables["files"].create(db.engine)
        files = FileStore(db, BlobStore(tmp_path / "files"))
        files.add_bytes(b"x", project="acme", filename="a.txt", purpose="assistants")
        db.init_schema()
        assert [f.filename for f in files.list("acme").items] == ["a.txt"]
        assert inspect(db.engine).has_table("fine_tuning_jobs")
        assert _revision(db) == migrations.head_revision()
    finally:
        db.dispose()


def test_database_from_a_newer_version_is_refused(database_url):
    db = Database(database_url)
    try:
        db.init_schema()
        with db.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_future'")
        with pytest.raises(migrations.SchemaError, match="'9999_future'.*newer tuneforge"):
            db.init_schema()
    finally:
        db.dispose()
