"""`tuneforge migrate` from a live tuneforge (an OpenAI-compatible fine-tuning API) into a fresh one, with
the real CLI: a dry run changes nothing, a run copies files byte for byte and re-creates both jobs with
their settings and `metadata.migrated_from`, the source ids answer on the target, and a second run
changes nothing."""

from __future__ import annotations

import hashlib

import pytest
from migratekit import Server, contents, interrupted, migrate


def _state(client) -> tuple[list, list]:
    return sorted(f.id for f in client.files.list()), sorted(j.id for j in client.fine_tuning.jobs.list())


@pytest.fixture(scope="module")
def target(settings, tiny_model, tmp_path_factory):
    server = Server(settings, tmp_path_factory.mktemp("target") / "home")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def runs(source, source_jobs, target) -> dict:
    client = target.client()
    dry = migrate(source.base_url, target.base_url, "--dry-run")
    after_dry = _state(client)
    # Ctrl-C once the first file is on the target; the next run must complete the migration.
    stopped = interrupted(source.base_url, target.base_url, lambda: client.files.list().data)
    first = migrate(source.base_url, target.base_url)
    after_first = _state(client)
    second = migrate(source.base_url, target.base_url)
    return {"dry": dry, "after_dry": after_dry, "stopped": stopped, "first": first,
            "after_first": after_first, "second": second, "after_second": _state(client), "client": client}


def _migrated(client) -> dict[str, dict]:
    return {j.metadata["migrated_from"]: j.model_dump() for j in client.fine_tuning.jobs.list()
            if (j.metadata or {}).get("migrated_from")}


def test_dry_run_prints_the_plan_and_changes_nothing(runs, source_jobs):
    dry = runs["dry"]
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert runs["after_dry"] == ([], [])
    for job in (source_jobs["chat"], source_jobs["legacy"]):
        assert job["id"] in dry.stdout
    assert source_jobs["files"]["train.jsonl"] in dry.stdout and " B)" in dry.stdout  # files with sizes
    assert "tiny-llama" in dry.stdout and "Dry run: nothing was changed." in dry.stdout
    assert "Estimated training time on this machine: about" in dry.stdout


def test_jobs_are_recreated_with_their_settings_and_origin(runs, source_jobs):
    first = runs["first"]
    assert first.returncode == 0, first.stdout + first.stderr
    migrated = _migrated(runs["client"])
    assert len(runs["client"].fine_tuning.jobs.list().data) == 2  # the Ctrl-C left no duplicate
    chat, legacy = source_jobs["chat"], source_jobs["legacy"]
    assert set(migrated) == {chat["id"], legacy["id"]}
    new = migrated[chat["id"]]
    assert new["status"] == "succeeded" and new["model"] == "tiny-llama"
    assert new["method"]["type"] == "supervised"
    assert new["hyperparameters"]["n_epochs"] == 1
    assert new["user_provided_suffix"] == "support" and new["seed"] == 7
    assert new["metadata"] == {"team": "support", "migrated_from": chat["id"],
                               "migrated_model": chat["fine_tuned_model"]}
    old = migrated[legacy["id"]]
    assert old["status"] == "succeeded" and old["user_provided_suffix"] == "oldie"
    assert old["hyperparameters"]["n_epochs"] == 1
    for job in (chat, legacy):  # the final table names both models
        assert job["fine_tuned_model"] in first.stdout
        assert migrated[job["id"]]["fine_tuned_model"] in first.stdout


def test_ctrl_c_stops_cleanly_and_the_next_run_completes(runs):
    stopped = runs["stopped"]
    assert stopped.returncode == 130, stopped.stdout + stopped.stderr
    assert "Traceback" not in stopped.stderr and "run the same command again" in stopped.stderr
    copied = [f for f in runs["client"].files.list() if f.purpose != "fine-tune-results"]  # not the target's
    assert len(copied) == 5  # chat train, valid and results, legacy train and results: each once


def test_files_arrive_byte_identical(runs, source, source_jobs):
    source_files = contents(source.client())
    target_files = contents(runs["client"])
    chat, legacy = source_jobs["chat"], source_jobs["legacy"]
    wanted = [chat["training_file"], chat["validation_file"], *chat["result_files"],
              legacy["training_files"][0]["id"], *(f["id"] for f in legacy["result_files"])]
    target_hashes = {hashlib.sha256(b).hexdigest() for b in target_files.values()}
    for file_id in wanted:
        assert hashlib.sha256(source_files[file_id]).hexdigest() in target_hashes, file_id
    new = _migrated(runs["client"])[chat["id"]]
    assert target_files[new["training_file"]] == source_files[chat["training_file"]]
    assert target_files[new["validation_file"]] == source_files[chat["validation_file"]]


def test_source_ids_answer_on_the_target(runs, source_jobs):
    client = runs["client"]
    chat_id, legacy_id = source_jobs["chat"]["fine_tuned_model"], source_jobs["legacy"]["fine_tuned_model"]
    ids = {m.id for m in client.models.list()}
    assert {chat_id, legacy_id} <= ids
    new = _migrated(client)[source_jobs["chat"]["id"]]
    assert client.models.retrieve(chat_id).model_dump()["parent"] == new["fine_tuned_model"]
    reply = client.chat.completions.create(model=chat_id, max_tokens=4,
                                           messages=[{"role": "user", "content": "Where is my order?"}])
    assert reply.model == chat_id and reply.choices[0].message.content is not None
    done = client.completions.create(model=legacy_id, prompt="Do you ship abroad? ->", max_tokens=4)
    assert done.model == legacy_id and done.choices[0].text is not None


def test_second_run_changes_nothing_and_says_so(runs):
    second = runs["second"]
    assert second.returncode == 0, second.stdout + second.stderr
    assert runs["after_second"] == runs["after_first"]
    assert second.stdout.count("already migrated") >= 2


def test_filters_pick_jobs_and_bad_options_stop_before_anything(runs, source, target, source_jobs):
    chat, legacy = source_jobs["chat"]["id"], source_jobs["legacy"]["id"]
    picked = migrate(source.base_url, target.base_url, "--dry-run", "--job", chat, "--suffix", "support")
    assert picked.returncode == 0, picked.stderr
    assert chat in picked.stdout and legacy not in picked.stdout
    unknown = migrate(source.base_url, target.base_url, "--job", "ftjob-nosuchjob")
    assert unknown.returncode != 0 and "ftjob-nosuchjob: no such job on the source" in unknown.stderr
    unmapped = migrate(source.base_url, target.base_url, "--job", chat, "--map", "tiny-llama=no-such-base")
    assert unmapped.returncode != 0 and "no-such-base" in unmapped.stderr
    assert _state(runs["client"]) == runs["after_second"]
