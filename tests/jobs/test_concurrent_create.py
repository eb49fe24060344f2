"""Many clients creating jobs at once against a live server: every create is answered, none is a 500."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from jobkit import chat_rows, upload
from openai import OpenAI


def test_40_concurrent_creates_all_succeed_with_distinct_jobs(job_home, spawn, tmp_path):
    server = spawn("serve", job_home, extra=("--no-worker",))
    client = OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    file_id = upload(client, chat_rows(12), tmp_path)

    def create(i: int) -> httpx.Response:
        return httpx.post(server.base_url + "/fine_tuning/jobs", timeout=60,
                          json={"model": "tiny-llama", "training_file": file_id, "suffix": f"c{i}"})

    with ThreadPoolExecutor(max_workers=40) as pool:
        responses = list(pool.map(create, range(40)))

    failures = [r.text for r in responses if r.status_code != 200]
    assert [r.status_code for r in responses] == [200] * 40, failures
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 40
    listed = client.fine_tuning.jobs.list(limit=100)
    assert ids <= {job.id for job in listed.data}
