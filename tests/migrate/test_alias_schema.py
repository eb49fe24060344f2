"""Revision 0002 (model aliases) upgrades a database at the baseline keeping every row."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from tuneforge.models.registry import list_models, lookup_model
from tuneforge.store import migrations, tables  # noqa: F401  (registers every table)
from tuneforge.store.db import Database
from tuneforge.store.tables_jobs import FineTunedModel, Job


def test_a_baseline_database_is_upgraded_keeping_its_rows(database_url):
    db = Database(database_url)
    try:
        with db.engine.begin() as conn:  # what the last release (revision 0001) left behind
            command.upgrade(migrations.alembic_config(conn), migrations.BASELINE)
        assert not inspect(db.engine).has_table("model_aliases")
        with db.session() as s:
            # Only the baseline's columns: the current model has more (e.g. max_processes, revision 0004).
            s.execute(Job.__table__.insert().values(
                id="ftjob-old", project="acme", legacy=False, model="tiny-llama", base_model="tiny-llama",
                status="succeeded", created_at=1, created_ns=0, updated_at=1, training_file="file-x",
                hyperparameters={}, method="supervised", training_type="lora", seed=1,
                organization="personal", result_files=[], attempts=1, resume=False,
                fine_tuned_model="ft:tiny-llama:personal::oldmodel"))
            s.add(FineTunedModel(id="ft:tiny-llama:personal::oldmodel", project="acme", job_id="ftjob-old",
                                 base_model="tiny-llama", path="/m", method="lora", kind="final", created=2,
                                 owned_by="personal"))
        db.init_schema()
        with db.engine.connect() as conn:
            assert migrations.current_revision(conn) == migrations.head_revision()  # 0002 and later
        assert inspect(db.engine).has_table("model_aliases")
        assert [m.id for m in list_models(db, "acme")] == ["ft:tiny-llama:personal::oldmodel"]
        assert lookup_model(db, "ft:tiny-llama:personal::oldmodel", "acme").job_id == "ftjob-old"
        with db.session() as s:
            old = s.get(Job, "ftjob-old")
            assert old.status == "succeeded" and old.max_processes is None  # 0004's column, no cap
    finally:
        db.dispose()
