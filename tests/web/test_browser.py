"""The web app in a real browser against a real server: datasets, jobs with live curves, chat, compare.

Each test saves full-page screenshots at 1280 and 390 px to test-artifacts/web/ for a human to look at.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.browser

QUESTIONS = ["reset my password", "change my email", "cancel my plan", "get an invoice", "add a teammate"]


def _rows(n: int) -> list[dict]:
    return [{"messages": [
        {"role": "system", "content": "You are the Acme support assistant."},
        {"role": "user", "content": f"How do I {QUESTIONS[i % 5]}? (ticket {i})"},
        {"role": "assistant",
         "content": f"Open **Settings**, choose *{QUESTIONS[i % 5]}* and confirm. Ticket {i}."},
    ]} for i in range(n)]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("web-data")
    _write(d / "support.jsonl", [json.dumps(r) for r in _rows(12)])  # small: this CPU is slow
    chinese = {"messages": [{"role": "user", "content": "怎么重置密码？"},
                            {"role": "assistant", "content": "打开**设置**，选择*重置密码*并确认。"}]}
    _write(d / "valid.jsonl", [json.dumps(r, ensure_ascii=False) for r in [*_rows(3), chinese]])
    good = [json.dumps(r) for r in _rows(11)]
    no_answer = json.dumps({"messages": [{"role": "user", "content": "no answer"}]})
    cut_off = '{"messages": [{"role": "user", "content": "hi"}'
    _write(d / "broken.jsonl", [good[0], cut_off, no_answer, *good[1:]])
    return d


@pytest.fixture(scope="module")
def finetuned_model(web_server, tiny_model, data_dir) -> str:
    """A fine-tune of the tiny model made through the API (with a validation file, so it has an eval)."""
    with httpx.Client(base_url=f"{web_server}/v1", timeout=60) as client:
        ids = []
        for name in ("support.jsonl", "valid.jsonl"):
            with open(data_dir / name, "rb") as fh:
                r = client.post("/files", data={"purpose": "fine-tune"}, files={"file": (name, fh)})
            r.raise_for_status()
            ids.append(r.json()["id"])
        r = client.post("/fine_tuning/jobs", json={
            "model": tiny_model, "training_file": ids[0], "validation_file": ids[1], "suffix": "web-fixture",
            "hyperparameters": {"n_epochs": 1}})
        r.raise_for_status()
        job_id = r.json()["id"]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            job = client.get(f"/fine_tuning/jobs/{job_id}").json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(1)
        assert job["status"] == "succeeded", job
        return job["fine_tuned_model"]


def test_bad_file_shows_findings_by_line(page, shoot, data_dir):
    page.goto("/#/datasets")
    page.set_input_files(".dropzone input[type=file]", str(data_dir / "broken.jsonl"))
    report = page.locator(".report[data-ok=false]")
    report.wait_for()
    assert "Fix the errors" in report.inner_text()
    line2 = page.locator("table.findings tr[data-line='2']")
    assert "invalid_json" in line2.inner_text()
    assert "missing_assistant" in page.locator("table.findings tr[data-line='3']").inner_text()
    # Nothing was stored: a bad file never reaches /v1/files by itself.
    assert "broken.jsonl" not in page.locator("table.files").all_inner_texts().__str__()
    shoot(page, "datasets-bad-file")


def test_good_file_preview_and_upload(page, shoot, data_dir, web_server):
    page.goto("/#/datasets")
    page.set_input_files(".dropzone input[type=file]", str(data_dir / "support.jsonl"))
    page.locator(".report[data-ok=true]").wait_for()
    # The trainer's view: the assistant answer is marked as trained, the question is not.
    first = page.locator("pre.tokens").first
    assert "Open **Settings**" in first.locator("mark").first.inner_text()
    assert "How do I reset my password" not in " ".join(first.locator("mark").all_inner_texts())
    assert "Examples: 12" in page.locator(".report").inner_text()
    page.get_by_role("button", name="Upload support.jsonl").click()
    page.locator("table.files td", has_text="support.jsonl").first.wait_for()
    files = httpx.get(f"{web_server}/v1/files").json()["data"]
    assert any(f["filename"] == "support.jsonl" for f in files)
    shoot(page, "datasets-good-file")


def test_create_job_and_watch_the_curve_grow(page, shoot, tiny_model, data_dir, web_server):
    with open(data_dir / "support.jsonl", "rb") as fh:
        file_id = httpx.post(f"{web_server}/v1/files", data={"purpose": "fine-tune"},
                             files={"file": ("support.jsonl", fh)}).json()["id"]
    page.goto(f"/#/jobs/new?training_file={file_id}")
    page.select_option("select[name=model]", tiny_model)
    # 120 steps: the page polls while they run (4 epochs, 48 steps, once finished between two polls on a
    # fast CPU).
    page.fill("input[name=n_epochs]", "10")
    page.fill("input[name=suffix]", "web-ui")
    shoot(page, "job-form")
    # Record every value the page shows for "metric points so far", from before the job exists (the page
    # changes route, not document, so the observer stays).
    page.evaluate("""() => {
      window.__points = [];
      const main = document.getElementById('main');
      new MutationObserver(() => window.__points.push(Number(main.dataset.points || 0)))
        .observe(main, {attributes: true, attributeFilter: ['data-points']});
    }""")
    page.get_by_role("button", name="Create job").click()
    page.wait_for_url("**/#/jobs/ftjob-*")
    page.wait_for_function("() => document.getElementById('main').dataset.status === 'succeeded'",
                           timeout=300_000)
    seen = sorted(set(page.evaluate("window.__points")) - {0})
    assert len(seen) >= 2, f"the curve never grew while the job ran (points seen: {seen})"
    assert page.locator(".chart[data-chart=loss] canvas").count() == 1
    assert page.locator(".chart[data-chart=accuracy] canvas").count() == 1
    assert page.locator("ol.events li", has_text="Step").count() > 0
    assert page.locator("a.button", has_text="Continue training").count() == 1
    shoot(page, "job-detail")
    page.goto("/#/jobs")
    page.locator("table.jobs .badge", has_text="succeeded").first.wait_for()
    shoot(page, "jobs-list")


def test_chat_streams_the_reply(page, shoot, tiny_model):
    page.goto(f"/#/playground?model={tiny_model}")
    page.fill("input[name=max_tokens]", "24")
    page.fill("textarea[name=message]", "Hello there")
    page.evaluate("""() => {
      window.__updates = 0;
      new MutationObserver((records) => {
        for (const r of records) if (r.target.matches('.msg.assistant')) window.__updates++;
      }).observe(document.querySelector('.chat-log'), {attributes: true, attributeFilter: ['data-text'],
                                                      subtree: true});
    }""")
    with page.expect_response("**/v1/chat/completions") as info:
        page.keyboard.press("Enter")
    assert info.value.headers["content-type"].startswith("text/event-stream")
    reply = page.locator(".msg.assistant").first
    page.wait_for_function("() => { const m = document.querySelector('.msg.assistant');"
                           " return m && !m.classList.contains('streaming') && m.dataset.text; }")
    assert page.evaluate("window.__updates") >= 2, "the reply arrived in one piece, not streamed"
    assert not reply.evaluate("el => el.classList.contains('failed')")
    assert page.locator(".msg.user").inner_text().endswith("Hello there")
    shoot(page, "playground")


def test_compare_two_models_side_by_side(page, shoot, tiny_model, finetuned_model):
    page.goto(f"/#/compare?models={tiny_model},{finetuned_model}")
    page.fill("input[name=max_tokens]", "16")
    page.fill("textarea[name=prompt]", "How do I reset my password?")
    page.get_by_role("button", name="Run").click()
    page.wait_for_function("() => { const c = [...document.querySelectorAll('.column .msg')];"
                           " return c.length === 2 && c.every((m) => !m.classList.contains('streaming')"
                           " && m.dataset.text); }", timeout=120_000)
    columns = page.locator(".column")
    assert columns.nth(0).get_attribute("data-model") == tiny_model
    assert columns.nth(1).get_attribute("data-model") == finetuned_model
    # The fine-tune's column carries its held-out evaluation (the job had a validation file), and, the
    # validation answers being in two languages, the figures of each.
    columns.nth(1).locator(".eval", has_text="Loss").wait_for()
    languages = columns.nth(1).locator(".eval-languages li")
    assert [languages.nth(i).get_attribute("data-language") for i in range(languages.count())] == ["en", "zh"]
    assert languages.nth(0).inner_text().startswith("English (3): Loss")
    assert languages.nth(1).inner_text().startswith("Chinese (1): Loss")
    assert columns.nth(0).locator(".eval-languages").count() == 0  # the base has no job, no figures
    shoot(page, "compare")


def test_models_page_shows_lineage(page, shoot, tiny_model, finetuned_model):
    page.goto("/#/models")
    row = page.locator(f"tr[data-id='{finetuned_model}']")
    row.wait_for()
    text = row.inner_text()
    assert f"from {tiny_model}" in text and "job ftjob-" in text and "data file-" in text
    row.get_by_role("button", name="Export").click()
    assert "tuneforge models export" in row.inner_text()
    shoot(page, "models")


def test_model_output_markdown_cannot_run_script(page):
    page.goto("/#/playground")
    result = page.evaluate("""async () => {
      const { renderMarkdown } = await import('/static/js/markdown.js');
      const el = document.createElement('div');
      document.body.append(el);
      renderMarkdown(el, '**bold** <img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script>' +
                         ' [link](javascript:window.__pwned=3)');
      await new Promise((r) => setTimeout(r, 300));
      el.querySelector('a')?.click();
      return { html: el.innerHTML, pwned: window.__pwned ?? null };
    }""")
    assert result["pwned"] is None
    assert "<strong>bold</strong>" in result["html"]
    assert "onerror" not in result["html"] and "<script" not in result["html"]
    assert "javascript:" not in result["html"]


def test_pause_resume_and_cancel_from_the_job_page(page, tiny_model, data_dir, web_server):
    with httpx.Client(base_url=f"{web_server}/v1", timeout=60) as client:
        with open(data_dir / "support.jsonl", "rb") as fh:
            file_id = client.post("/files", data={"purpose": "fine-tune"},
                                  files={"file": ("support.jsonl", fh)}).json()["id"]
        job = client.post("/fine_tuning/jobs", json={"model": tiny_model, "training_file": file_id,
                                                     "hyperparameters": {"n_epochs": 5}}).json()
    page.on("dialog", lambda dialog: dialog.accept())  # the "Cancel job?" confirmation
    page.goto(f"/#/jobs/{job['id']}")

    def wait_status(condition: str, timeout: int = 120_000) -> None:
        page.wait_for_function(f"() => {{ const s = document.getElementById('main').dataset.status;"
                               f" return {condition}; }}", timeout=timeout)

    wait_status("s === 'running'")
    page.get_by_role("button", name="Pause").click()
    wait_status("s === 'paused'")
    page.get_by_role("button", name="Resume").click()
    wait_status("s !== 'paused'", 60_000)
    page.get_by_role("button", name="Cancel").click()
    wait_status("s === 'cancelled'")
    assert page.locator(".job-head .badge", has_text="cancelled").count() == 1
    assert page.get_by_role("button", name="Cancel").count() == 0


def test_stop_ends_a_reply_early_and_clear_starts_over(page, tiny_model):
    page.goto(f"/#/playground?model={tiny_model}")
    page.fill("input[name=max_tokens]", "2000")
    page.fill("textarea[name=message]", "Tell me a very long story")
    page.keyboard.press("Enter")
    page.wait_for_function("() => (document.querySelector('.msg.assistant')?.dataset.text || '').length > 0")
    page.get_by_role("button", name="Stop").click()
    page.wait_for_function("() => !document.querySelector('.msg.assistant').classList.contains('streaming')")
    assert page.locator(".msg.assistant").get_attribute("data-text").endswith("(stopped)")
    assert page.get_by_role("button", name="Send").is_visible()
    page.get_by_role("button", name="Clear chat").click()
    assert page.locator(".msg").count() == 0
