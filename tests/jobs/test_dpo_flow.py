"""DPO jobs through the API with the current `openai` SDK: create, train, follow, checkpoints, results."""

from __future__ import annotations

import csv
import io

import openai
import pytest
from dpokit import heldout_pairs, margins, train_pairs
from jobkit import chat_rows, upload

DPO = {"type": "dpo", "dpo": {"hyperparameters": {"n_epochs": 3, "batch_size": 2,
                                                  "learning_rate_multiplier": 20}}}


def test_dpo_job_end_to_end_moves_heldout_preferences(inproc, job_settings, tiny_model_dir, tmp_path):
    client = inproc.client
    train_id = upload(client, train_pairs(12), tmp_path)
    valid_id = upload(client, heldout_pairs(), tmp_path, "valid.jsonl")
    job = client.fine_tuning.jobs.create(model="tiny-llama", training_file=train_id, validation_file=valid_id,
                                         method=DPO, suffix="polite")
    assert job.method.type == "dpo" and job.hyperparameters is None  # as OpenAI: DPO's are under method
    assert job.method.dpo.hyperparameters.beta == "auto" and job.method.dpo.hyperparameters.n_epochs == 3
    inproc.work()
    done = client.fine_tuning.jobs.retrieve(job.id)
    assert done.status == "succeeded", done.error
    hp = done.method.dpo.hyperparameters
    assert (hp.beta, hp.batch_size, hp.n_epochs, hp.learning_rate_multiplier) == (0.1, 2, 3, 20)
    assert done.hyperparameters is None and done.fine_tuned_model.startswith("ft:tiny-llama:")

    metrics = [e for e in client.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "metrics"]
    assert sorted(e.data["step"] for e in metrics) == list(range(1, 19))
    last = max(metrics, key=lambda e: e.data["step"]).data
    assert {"train_loss", "train_reward_accuracy", "train_reward_margin", "train_chosen_reward",
            "train_rejected_reward"} <= set(last)
    assert last["train_reward_accuracy"] == 1.0 and last["full_valid_reward_accuracy"] == 1.0
    assert any(e.data.get("valid_reward_margin") is not None for e in metrics)

    ckpts = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in ckpts] == [18, 12, 6]
    assert ckpts[0].fine_tuned_model_checkpoint == done.fine_tuned_model
    assert ckpts[0].metrics.train_loss is not None
    assert ckpts[0].metrics.model_dump()["train_reward_accuracy"] == 1.0

    table = list(csv.DictReader(io.StringIO(client.files.content(done.result_files[0]).text)))
    assert len(table) == 18 and float(table[-1]["train_reward_margin"]) > 0

    final = job_settings.jobs_dir / job.id / "output" / "final"
    before = margins(tiny_model_dir, None, heldout_pairs())
    after = margins(tiny_model_dir, final, heldout_pairs())
    assert all(a > b + 1.0 for a, b in zip(after, before, strict=True)), (before, after)


@pytest.mark.parametrize("rows, method, says", [
    (chat_rows(12), DPO, "is in the fine-tune-chat format, but the specified fine-tuning job is not using "
                         "'supervised' as the training method (provided method=dpo)"),
    (train_pairs(12), {"type": "supervised"}, "preference (DPO) format"),
])
def test_a_file_that_does_not_fit_the_method_fails_validation(inproc, tmp_path, rows, method, says):
    file_id = upload(inproc.client, rows, tmp_path)
    job = inproc.client.fine_tuning.jobs.create(model="tiny-llama", training_file=file_id, method=method)
    inproc.work()
    failed = inproc.client.fine_tuning.jobs.retrieve(job.id)
    assert failed.status == "failed" and failed.error.code == "invalid_training_file"
    assert says in failed.error.message and failed.error.param == "training_file"


def test_reinforcement_and_bad_beta_are_400s_saying_what_to_do(inproc, tmp_path):
    file_id = upload(inproc.client, train_pairs(12), tmp_path)
    with pytest.raises(openai.BadRequestError) as err:
        inproc.client.fine_tuning.jobs.create(model="tiny-llama", training_file=file_id,
                                              method={"type": "reinforcement"})
    assert err.value.param == "method.type" and err.value.code == "unsupported_method"
    assert "'supervised'" in err.value.message and "'dpo'" in err.value.message
    for beta in (0, 3, True):
        with pytest.raises(openai.BadRequestError) as err:
            inproc.client.fine_tuning.jobs.create(
                model="tiny-llama", training_file=file_id,
                method={"type": "dpo", "dpo": {"hyperparameters": {"beta": beta}}})
        assert "beta" in (err.value.param or ""), err.value.param
