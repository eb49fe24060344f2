"""Whatever goes wrong while validating a job's files, the job ends `failed` with an error, once."""

from __future__ import annotations

from jobkit import chat_rows, upload


def test_a_crash_while_validating_fails_the_job_instead_of_retrying_forever(inproc, tmp_path, monkeypatch):
    import tuneforge.data.validate as validate

    def broken(*_args, **_kwargs):  # stands in for any bug a file could trigger in the validator
        raise RuntimeError("validator bug")

    file_id = upload(inproc.client, chat_rows(), tmp_path)
    job = inproc.client.fine_tuning.jobs.create(model="tiny-llama", training_file=file_id)
    monkeypatch.setattr(validate, "validate_file", broken)
    assert inproc.work() == 1
    failed = inproc.client.fine_tuning.jobs.retrieve(job.id)
    assert failed.status == "failed"
    assert failed.error.code == "file_validation_failed" and "tuneforge prepare" in failed.error.message
    assert "validator bug" not in failed.error.message  # internals stay in the log
    assert inproc.work() == 0  # nothing left to claim: no retry loop
    events = [e.message for e in inproc.client.fine_tuning.jobs.list_events(job.id).data]
    assert sum("could not validate" in m for m in events) == 1
