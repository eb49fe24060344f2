"""Model aliases (a migrated model's source id): they answer for the job's model in /v1/models and in
the registry every endpoint resolves through, only in their project; a clash is refused in OpenAI's
shape; deleting the alias keeps the model, deleting the model deletes its aliases."""

from __future__ import annotations

import dataclasses
from urllib.parse import quote

import openai
import pytest

from tuneforge.models import registry
from tuneforge.store.tables_jobs import FineTunedModel, Job

SOURCE_ID = "ft:gpt-4o-mini-2024-07-18:acme:support:AbC123"
NEW_ID = "ft:tiny-llama:personal:support:newjob01"


@pytest.fixture
def app(settings, tiny_model, tmp_path):
    from fastapi.testclient import TestClient

    from tuneforge.api.app import create_app

    app_settings = dataclasses.replace(settings, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    app = create_app(app_settings, start_worker=False)
    with TestClient(app, base_url="http://127.0.0.1") as http:
        app.state.http = http
        app.state.sdk = openai.OpenAI(base_url="http://127.0.0.1/v1", api_key="k", http_client=http,
                                      max_retries=0)
        yield app


def _job(app, job_id: str, project: str = "default") -> None:
    with app.state.db.session() as s:
        s.add(Job(id=job_id, project=project, model="tiny-llama", base_model="tiny-llama", status="running",
                  created_at=1000, updated_at=1000, training_file="file-x", hyperparameters={}, seed=1,
                  organization="personal", result_files=[], attempts=0, resume=False))


def _model(app, job_id: str, model_id: str, folder, project: str = "default") -> None:
    folder.mkdir(exist_ok=True)
    (folder / "adapter_config.json").write_text("{}")
    with app.state.db.session() as s:
        s.add(FineTunedModel(id=model_id, project=project, job_id=job_id, base_model="tiny-llama",
                             path=str(folder), method="lora", kind="final", created=2000,
                             owned_by="personal"))


def _put(app, alias: str, job: str):
    return app.state.http.put(f"/v1/models/{quote(alias, safe=':')}", json={"job": job})


def test_alias_answers_once_the_job_has_its_model(app, tmp_path):
    _job(app, "ftjob-new1")
    made = _put(app, SOURCE_ID, "ftjob-new1")
    assert made.status_code == 200, made.text
    assert made.json()["model"] is None  # pending: the job has not succeeded yet
    assert SOURCE_ID not in {m.id for m in app.state.sdk.models.list()}
    with pytest.raises(openai.NotFoundError):
        app.state.sdk.models.retrieve(SOURCE_ID)

    _model(app, "ftjob-new1", NEW_ID, tmp_path / "m")  # what the worker writes when the job succeeds
    listed = {m.id: m.model_dump() for m in app.state.sdk.models.list()}
    assert listed[SOURCE_ID]["parent"] == NEW_ID and listed[SOURCE_ID]["root"] == "tiny-llama"
    assert app.state.sdk.models.retrieve(SOURCE_ID).id == SOURCE_ID
    target = registry.resolve_model(SOURCE_ID, "default", app.state.settings, app.state.db)
    assert target is not None and target.id == SOURCE_ID and target.path == tmp_path / "m"
    assert registry.resolve_model(SOURCE_ID, "other", app.state.settings, app.state.db) is None
    assert _put(app, SOURCE_ID, "ftjob-new1").status_code == 200  # the same alias again: no-op


@pytest.mark.parametrize("name", ["tiny-llama", "gpt-4o-mini", NEW_ID, "taken"])
def test_a_clash_is_refused_in_openai_shape(app, tmp_path, name):
    _job(app, "ftjob-new1")
    _job(app, "ftjob-new2")
    _model(app, "ftjob-new1", NEW_ID, tmp_path / "m")
    assert _put(app, "taken", "ftjob-new1").status_code == 200
    refused = _put(app, name, "ftjob-new2")
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "model_alias_conflict" and error["param"] == "model"
    assert name in error["message"] and error["type"] == "invalid_request_error"


def test_an_alias_names_only_a_job_of_its_project(app):
    _job(app, "ftjob-theirs", project="other")
    refused = _put(app, SOURCE_ID, "ftjob-theirs")
    assert refused.status_code == 404 and "ftjob-theirs" in refused.json()["error"]["message"]


class Engine:  # records what the delete route asks of the inference engine
    def __init__(self):
        self.unloaded: list[str] = []

    def unload(self, model_id: str) -> bool:
        self.unloaded.append(model_id)
        return True

    def close(self) -> None:
        pass


def test_deleting_the_alias_keeps_the_model(app, tmp_path):
    _job(app, "ftjob-new1")
    _model(app, "ftjob-new1", NEW_ID, tmp_path / "m")
    _put(app, SOURCE_ID, "ftjob-new1")
    app.state.engine = Engine()
    assert app.state.sdk.models.delete(SOURCE_ID).deleted
    ids = {m.id for m in app.state.sdk.models.list()}
    assert SOURCE_ID not in ids and NEW_ID in ids and (tmp_path / "m").is_dir()
    assert app.state.engine.unloaded == []  # the model still serves under its own id
    with pytest.raises(openai.NotFoundError):
        app.state.sdk.models.delete(SOURCE_ID)


def test_deleting_the_model_deletes_its_alias(app, tmp_path):
    _job(app, "ftjob-new1")
    _model(app, "ftjob-new1", NEW_ID, tmp_path / "m")
    _put(app, SOURCE_ID, "ftjob-new1")
    app.state.engine = Engine()
    assert app.state.sdk.models.delete(NEW_ID).deleted
    with pytest.raises(openai.NotFoundError):
        app.state.sdk.models.retrieve(SOURCE_ID)
    assert registry.list_aliases(app.state.db, "default") == []
    assert sorted(app.state.engine.unloaded) == sorted([NEW_ID, SOURCE_ID])


def test_an_unsupported_method_is_reported_for_its_job(app):
    from tuneforge.migrate.errors import MigrateError
    from tuneforge.migrate.jobs import create_body, create_job
    from tuneforge.migrate.source import SourceJob

    job = SourceJob(id="ftjob-rft", legacy=False, model="tiny-llama", status="succeeded", created_at=1,
                    fine_tuned_model=SOURCE_ID, files=[], method="reinforcement",
                    hyperparameters={"n_epochs": "auto"})
    body = create_body(job, "tiny-llama", "file-x", None)
    assert body["method"] == {"type": "reinforcement",
                              "reinforcement": {"hyperparameters": {"n_epochs": "auto"}}}
    with pytest.raises(MigrateError, match="method 'reinforcement' is not supported by the target"):
        create_job(app.state.sdk, job, body)


def test_filters_and_dates():
    from tuneforge.migrate.errors import MigrateError
    from tuneforge.migrate.plan import Filters, parse_maps, parse_since
    from tuneforge.migrate.source import SourceJob, suffix_from_model

    assert parse_since("2024-05-01") == 1714521600
    with pytest.raises(MigrateError, match="YYYY-MM-DD"):
        parse_since("last tuesday")
    with pytest.raises(MigrateError, match="SOURCE_BASE=TARGET_BASE"):
        parse_maps(["gpt-4o-mini"])
    job = SourceJob(id="ftjob-a", legacy=False, model="m", status="succeeded", created_at=1714521600,
                    fine_tuned_model=SOURCE_ID, files=[], suffix="support")
    assert Filters(jobs=["ftjob-a"], since=1714521600, suffix="support").keep(job)
    assert not Filters(since=1714521601).keep(job) and not Filters(suffix="x").keep(job)
    assert not Filters(jobs=["ftjob-b"]).keep(job)
    assert suffix_from_model(SOURCE_ID, False) == "support"
    assert suffix_from_model("ft:gpt-4o-mini:openai::7p4lURel", False) is None
    assert suffix_from_model("davinci:ft-acme:support-bot-2023-04-16-00-36-03", True) == "support-bot"
    assert suffix_from_model("davinci:ft-personal-2023-04-16-00-36-03", True) is None
