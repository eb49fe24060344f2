"""`/v1/models`: bases, aliases and fine-tuned models; ids with `:` and `/`, raw or `%2F`."""

from __future__ import annotations

import openai
import pytest

from tuneforge.models.registry import list_models, lookup_model
from tuneforge.store.tables_jobs import FineTunedModel

SLASHED = "ft:acme/llama-3:personal:sfx:abcd1234"


@pytest.fixture
def with_models(inproc, tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    with inproc.app.state.db.session() as session:
        for model_id, kind, step, project in (
            (SLASHED, "final", 10, "default"),
            (SLASHED + ":ckpt-step-5", "checkpoint", 5, "default"),
            ("ft:tiny-llama:personal::zzzz9999", "final", 3, "other"),
        ):
            session.add(
                FineTunedModel(
                    id=model_id,
                    project=project,
                    job_id="ftjob-x",
                    base_model="acme/llama-3",
                    path=str(folder if project == "default" else tmp_path),
                    method="lora",
                    kind=kind,
                    step=step,
                    created=1700000000,
                    owned_by="personal",
                )
            )
    return inproc


def test_list_has_bases_aliases_and_own_fine_tuned_models(with_models):
    ids = [m.id for m in with_models.client.models.list()]
    assert ids[:2] == [SLASHED, SLASHED + ":ckpt-step-5"]  # the project's models, newest first
    assert "ft:tiny-llama:personal::zzzz9999" not in ids  # another project's
    assert {"smollm2-135m-instruct", "tiny-llama", "davinci", "gpt-3.5-turbo", "babbage-002"} <= set(ids)
    alias = with_models.http.get("/v1/models/davinci").json()
    assert alias["owned_by"] == "tuneforge" and alias["root"] == "smollm2-135m-instruct"


@pytest.mark.parametrize("path", [SLASHED, SLASHED.replace("/", "%2F")])
def test_ids_with_colon_and_slash_route_raw_and_encoded(with_models, path):
    resp = with_models.http.get(f"/v1/models/{path}")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "id": SLASHED,
        "object": "model",
        "created": 1700000000,
        "owned_by": "personal",
        "root": "acme/llama-3",
        "parent": "acme/llama-3",
    }
    assert with_models.client.models.retrieve(SLASHED + ":ckpt-step-5").id == SLASHED + ":ckpt-step-5"


def test_unknown_model_is_404_model_not_found(with_models):
    with pytest.raises(openai.NotFoundError) as err:
        with_models.client.models.retrieve("gpt-9")
    assert err.value.code == "model_not_found" and err.value.param == "model"
    assert "gpt-9" in err.value.message
    with pytest.raises(openai.NotFoundError):
        with_models.client.models.retrieve("ft:tiny-llama:personal::zzzz9999")  # other project: 404, not 403


def test_delete_unloads_from_the_engine_and_frees_the_weights(with_models, tmp_path):
    unloaded = []

    class Engine:  # records what the route asks of the inference engine
        def unload(self, model_id: str) -> bool:
            unloaded.append(model_id)
            return True

    real = getattr(with_models.app.state, "engine", None)
    with_models.app.state.engine = Engine()
    try:
        deleted = with_models.client.models.delete(SLASHED + ":ckpt-step-5")
        resp = with_models.http.delete(f"/v1/models/{SLASHED.replace('/', '%2F')}")
    finally:
        with_models.app.state.engine = real
    assert deleted.deleted and deleted.id == SLASHED + ":ckpt-step-5"
    assert resp.status_code == 200 and resp.json() == {"id": SLASHED, "object": "model", "deleted": True}
    assert unloaded == [SLASHED + ":ckpt-step-5", SLASHED]
    assert not (tmp_path / "adapter").exists()
    db = with_models.app.state.db
    assert lookup_model(db, SLASHED, "default") is None and list_models(db, "default") == []
    with pytest.raises(openai.NotFoundError):
        with_models.client.models.delete(SLASHED)


def test_base_models_cannot_be_deleted(with_models):
    with pytest.raises(openai.BadRequestError) as err:
        with_models.client.models.delete("davinci")
    assert err.value.param == "model" and "base model" in err.value.message


def test_registry_lookup_is_scoped_to_the_project(with_models):
    db = with_models.app.state.db
    info = lookup_model(db, SLASHED + ":ckpt-step-5", "default")
    assert info is not None and info.kind == "checkpoint" and info.step == 5 and info.path.is_dir()
    assert lookup_model(db, SLASHED, "other") is None
