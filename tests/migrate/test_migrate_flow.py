"""`tuneforge migrate` from a live tuneforge (an OpenAI-compatible fine-tuning API) into a fresh one, with
the real CLI: a dry run changes nothing, a run copies files byte for byte and re-creates both jobs with
their settings and `metadata.migrated_from`, the source ids answer on the target, and a second run
changes nothing."""

from __future__ import annotations

import hashlib
import json

import pytest
from migratekit import SOURCE_KEY, Server, contents, eval_cli, interrupted, migrate
from testkit import write_jsonl


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


# Parity: these run last, as the capture adds files to the target the tests above count.

@pytest.fixture(scope="module")
def parity(runs, source, target, source_jobs, tmp_path_factory) -> dict:
    prompts = write_jsonl(tmp_path_factory.mktemp("prompts") / "prompts.jsonl", [
        {"messages": [{"role": "user", "content": "Do you ship abroad?"}]},
        {"prompt": "Is there a mobile app? ->"}])
    cap = ("--capture-max-tokens", "12", "--no-wait")
    dry = migrate(source.base_url, target.base_url, "--dry-run", "--capture", "validation")
    before = _state(runs["client"])
    first = migrate(source.base_url, target.base_url, "--capture", "validation", *cap)
    after_first = _state(runs["client"])
    again = migrate(source.base_url, target.base_url, "--capture", "validation", *cap)
    after_again = _state(runs["client"])
    own = migrate(source.base_url, target.base_url, "--job", source_jobs["legacy"]["id"], "--capture",
                  str(prompts), *cap)
    return {"dry": dry, "before": before, "first": first, "after_first": after_first, "again": again,
            "after_again": after_again, "own": own}


def _parity_files(client) -> dict[str, bytes]:
    return {f.filename: client.files.content(f.id).read() for f in client.files.list()
            if f.filename.startswith("parity-")}


def test_capture_keeps_the_source_answers_to_the_validation_prompts(parity, runs, source_jobs):
    dry, first = parity["dry"], parity["first"]
    assert dry.returncode == 0 and "capture its answers to the validation file's prompts" in dry.stdout
    assert "no capture: it has no validation file" in dry.stdout  # the legacy job
    assert first.returncode == 0, first.stdout + first.stderr
    assert parity["after_first"][1] == parity["before"][1]  # no job was made again
    chat = source_jobs["chat"]
    [(name, data)] = [(n, d) for n, d in _parity_files(runs["client"]).items() if chat["id"] in n]
    rows = [json.loads(line) for line in data.decode().splitlines()]
    assert len(rows) == 4  # the validation file's rows, each answered
    for row in rows:
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        assert not row["messages"][-1]["content"].startswith("Answer ")  # the model's words, not the file's
    assert "no validation file" in first.stdout  # the legacy job: nothing to ask, and it is no failure
    assert f"-m {chat['fine_tuned_model']} -f file-" in first.stdout.replace("\n", "")  # the eval to run


def test_capture_again_asks_nothing_and_own_prompts_reach_both_endpoints(parity, runs, source_jobs):
    again, own = parity["again"], parity["own"]
    assert again.returncode == 0 and "already captured" in again.stdout
    assert parity["after_again"][0] == parity["after_first"][0]
    assert own.returncode == 0, own.stdout + own.stderr
    legacy = source_jobs["legacy"]
    [data] = [d for n, d in _parity_files(runs["client"]).items() if legacy["id"] in n]
    chat_row, legacy_row = (json.loads(line) for line in data.decode().splitlines())
    assert chat_row["messages"][-1]["role"] == "assistant"
    assert legacy_row["prompt"] == "Is there a mobile app? ->" and isinstance(legacy_row["completion"], str)


def test_eval_compares_the_migrated_and_the_source_model_with_the_capture(parity, runs, source, target,
                                                                         source_jobs, tmp_path):
    chat = source_jobs["chat"]
    [file_id] = [f.id for f in runs["client"].files.list()
                 if f.filename.startswith(f"parity-{chat['id']}")]
    old_id, report = chat["fine_tuned_model"], tmp_path / "parity.html"
    proc = eval_cli("--base-url", target.base_url, "-m", old_id, "-f", file_id, "--compare",
                    f"{old_id}@{source.base_url}", "--compare-key", SOURCE_KEY, "--max-new-tokens", "12",
                    "-o", str(report), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    here, there = result["models"]
    assert (here["base_url"], there["base_url"]) == (target.base_url, source.base_url)
    assert result["file"] == f"{file_id} on {target.base_url}" and len(result["references"]) == 4
    assert there["rouge_l"] > 0.9, there["answers"]  # the source model repeats its captured answers
    html = report.read_text(encoding="utf-8")
    assert source.base_url in html and target.base_url in html and file_id in html
