"""Every command in README.md, run in order against a live server with the tiny model.

Commands are taken from the README's ```bash and ```python blocks and run as written, with these
substitutions only: the placeholder ids (file-abc123, ftjob-abc123, ft-abc123, ft:...:abc12345, the legacy
davinci:ft-... name) become the real ids of the objects the previous commands created; the built-in base
becomes the tiny test model (the server maps the OpenAI aliases to it too, and caps replies that set no
max_tokens, since a random model never ends one); the examples/ files are short
copies of the bundled ones (same names and formats); 127.0.0.1:8000 becomes the test server. The 0.x CLI
commands run the real `openai<1` CLI when TUNEFORGE_TEST_OPENAI0X names its executable, else the HTTP calls
that CLI makes are mirrored. Commands that install software or need a GPU are listed in NOT_RUN with the
place they are exercised instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from clikit import TUNEFORGE, start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]
NOT_RUN = {  # command -> where it is exercised instead
    "make demo": "run by hand before each release; its time is in the lead's report",
    "make test": ".ci/run (CI)",
    "make setup TORCH_SPEC=": "GPU machines only",
    "python3.11 -m venv .venv && .venv/bin/pip install torch --index-url <your CUDA wheel index>": "GPU only",
    'pip install "openai<1"': "the 0.x CLI is installed out of band (TUNEFORGE_TEST_OPENAI0X)",
    "make vllm": "a prerequisite of `make test`, whose tests/serving/test_vllm.py then uses .venv-vllm",
    "TUNEFORGE_INFERENCE_BACKEND=vllm tuneforge serve": "tests/serving/test_vllm.py (managed vLLM servers)",
    "tuneforge models pull gemma3-270m": "tests/models/test_gguf_pieces.py provisions it (a minute)",
}
PLACEHOLDER_FT = re.compile(r"ft:[\w.-]+:personal:([\w-]*):[a-z0-9]{8}")
LEGACY_FT = re.compile(r"davinci:ft-personal:[\w-]+-\d{4}(?:-\d\d){5}")
# What libraries print on their own (progress bars, deprecation warnings): never in tuneforge's output.
CHATTER = re.compile(r"Loading weights|\d+it/s\]|FutureWarning|DeprecationWarning|UserWarning")


def readme_blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```(bash|python)\n(.*?)```", text, flags=re.S)


def bash_commands(block: str) -> list[str]:
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        line = re.sub(r"\s{2,}#\s.*$", "", line).strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


class Runner:
    def __init__(self, server_url: str, cwd: Path, env: dict[str, str], tiny_dir: Path):
        self.tiny_dir = tiny_dir
        self.root = server_url.removesuffix("/v1")
        self.api = server_url
        self.cwd, self.env = cwd, env
        self.http = httpx.Client(base_url=server_url + "/", timeout=60,
                                 headers={"Authorization": "Bearer x"})

    def wait_for_jobs(self) -> None:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            jobs = self.http.get("fine_tuning/jobs", params={"limit": 50}).json()["data"]
            legacy = self.http.get("fine-tunes").json()["data"]
            busy = [j for j in jobs if j["status"] in ("validating_files", "queued", "running")]
            busy += [j for j in legacy if j["status"] in ("pending", "running")]
            if not busy:
                return
            time.sleep(1)
        raise AssertionError("jobs did not finish within 15 minutes")

    def substitute(self, cmd: str) -> str:
        jobs = self.http.get("fine_tuning/jobs", params={"limit": 50}).json()["data"]
        files = [f for f in self.http.get("files").json()["data"] if f["purpose"] == "fine-tune"]
        legacy = self.http.get("fine-tunes").json()["data"]

        def model_for(match: re.Match) -> str:
            suffix = match.group(1)
            for job in jobs:  # newest first
                model = job.get("fine_tuned_model") or ""
                if model and model.split(":")[3] == suffix:
                    return model
            raise AssertionError(f"no fine-tuned model with suffix {suffix!r} yet for: {cmd}")

        cmd = PLACEHOLDER_FT.sub(model_for, cmd)
        if legacy:
            cmd = cmd.replace("ft-abc123", legacy[0]["id"])  # newest first
            cmd = LEGACY_FT.sub(lambda m: legacy[0]["fine_tuned_model"] or m.group(0), cmd)
        if jobs:
            cmd = cmd.replace("ftjob-abc123", jobs[0]["id"])
        if files:
            cmd = cmd.replace("file-abc123", files[0]["id"])
        cmd = cmd.replace("/path/to/hf-folder-or-file.gguf", str(self.tiny_dir))
        return cmd.replace("http://127.0.0.1:8000", self.root).replace("smollm2-135m-instruct", "tiny-llama")

    def sh(self, cmd: str, stdin: str | None = None) -> str:
        proc = subprocess.run(["bash", "-c", cmd], cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=900, input=stdin)
        tail = proc.stdout[-3000:] + proc.stderr[-3000:]
        assert proc.returncode == 0, f"{cmd}\n--- exit {proc.returncode}\n{tail}"
        if cmd.startswith(TUNEFORGE):
            chatter = CHATTER.search(proc.stdout + proc.stderr)
            assert chatter is None, f"{cmd}: library output {chatter.group(0)!r} in\n{tail}"
        return proc.stdout

    def run(self, cmd: str) -> str:
        if cmd in NOT_RUN:
            return ""
        if cmd.startswith("export "):
            name, value = cmd.removeprefix("export ").split("=", 1)
            self.env[name] = self.substitute(value.strip('"'))
            return ""
        if cmd.startswith("tuneforge serve"):
            assert httpx.get(self.root + "/health").status_code == 200  # the fixture's `tuneforge serve`
            return ""
        full = self.substitute(cmd)
        if full.startswith("tuneforge chat"):
            out = self.sh(full.replace("tuneforge", TUNEFORGE, 1), stdin="When is your support open?\n")
        elif full.startswith("tuneforge "):
            out = self.sh(full.replace("tuneforge", TUNEFORGE, 1))
        elif full.startswith("curl "):
            out = self.sh(full.replace("curl ", "curl -sS --fail-with-body ", 1))
            assert not out.lstrip().startswith('{"error"'), out  # --fail-with-body also fails on 4xx/5xx
        elif full.startswith("openai "):
            out = self.openai0x(full)
        else:
            raise AssertionError(f"README command with no test: {cmd!r}; run it here or list it in NOT_RUN")
        self.wait_for_jobs()
        return out

    def openai0x(self, cmd: str) -> str:
        binary = os.environ.get("TUNEFORGE_TEST_OPENAI0X")
        if binary:
            return self.sh(cmd.replace("openai", binary, 1))
        return mirror_openai0x(self.http, cmd, self.cwd)


def _stream_events(http: httpx.Client, fine_tune_id: str) -> str:
    with http.stream("GET", f"fine-tunes/{fine_tune_id}/events", params={"stream": "true"}, timeout=900) as r:
        return "".join(r.iter_text())


def mirror_openai0x(http: httpx.Client, cmd: str, cwd: Path) -> str:
    """The HTTP calls the 0.x CLI (v0.28.1 openai/cli.py) makes for each command the README uses."""
    import shlex

    args = shlex.split(cmd)[2:]
    opts = {args[i]: args[i + 1] for i in range(1, len(args) - 1) if args[i].startswith("-")}
    verb = args[0]
    if verb == "fine_tunes.create":
        path = cwd / opts["-t"]
        same = [f for f in http.get("files").json()["data"]
                if f["filename"] == path.name and f["bytes"] == path.stat().st_size]
        file_id = same[0]["id"] if same else http.post("files", data={"purpose": "fine-tune"}, files={
            "file": (path.name, path.read_bytes())}).raise_for_status().json()["id"]
        body = {"training_file": file_id, "model": opts["-m"], "suffix": opts.get("--suffix")}
        return _stream_events(http, http.post("fine-tunes", json=body).raise_for_status().json()["id"])
    if verb == "fine_tunes.follow":
        return _stream_events(http, opts["-i"])
    if verb == "fine_tunes.list":
        return http.get("fine-tunes").raise_for_status().text
    if verb == "completions.create":
        body = {"model": opts["-m"], "prompt": opts["-p"], "max_tokens": int(opts.get("-M", 16)),
                "temperature": float(opts.get("-t", 1)), "stop": opts.get("--stop")}
        return http.post("completions", json=body).raise_for_status().json()["choices"][0]["text"]
    raise AssertionError(f"no 0.x mirror for {cmd!r}")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder like the repo root for the README's relative paths, with short copies of examples/."""
    cwd = tmp_path_factory.mktemp("readme")
    (cwd / "examples").mkdir()
    for name, n in (("support_train.jsonl", 12), ("support_heldout.jsonl", 3), ("support_legacy.jsonl", 12)):
        lines = (ROOT / "examples" / name).read_text(encoding="utf-8").splitlines()[:n]
        (cwd / "examples" / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cwd


@pytest.mark.slow
@pytest.mark.timeout(3600)  # ~35 commands and 6 fine-tuning jobs on the tiny model
def test_every_readme_command_runs(tuneforge_home, tiny_model, tiny_model_dir, workdir, tmp_path_factory,
                                   monkeypatch):
    monkeypatch.setenv("TUNEFORGE_DEFAULT_MODEL", tiny_model)  # the aliases (davinci, gpt-4o-mini) -> tiny
    # The tiny random model never ends a reply: uncapped, a chat reply runs to its 2,048-token context.
    monkeypatch.setenv("TUNEFORGE_DEFAULT_MAX_TOKENS", "48")
    server = start_server(tuneforge_home, tmp_path_factory.mktemp("readme-server") / "serve.log")
    env = {**os.environ, "OPENAI_BASE_URL": server.base_url, "COLUMNS": "200",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    runner = Runner(server.base_url, workdir, env, tiny_model_dir)
    outputs: dict[str, str] = {}
    try:
        for lang, block in readme_blocks():
            if lang == "python":
                code = block.replace("http://127.0.0.1:8000/v1", server.base_url)
                outputs[block] = runner.sh(f"{sys.executable} - <<'PY'\n{code}\nPY")
                assert "The job has successfully completed" in outputs[block]
                continue
            for cmd in bash_commands(block):
                outputs[cmd] = runner.run(cmd)
    finally:
        stop_server(server)
    server_log = server.log.read_text(encoding="utf-8", errors="replace")
    assert CHATTER.search(server_log) is None, f"library output in the server log:\n{server_log[-3000:]}"
    ran = {c for c in outputs if c not in NOT_RUN}
    in_readme = {block for lang, block in readme_blocks() if lang == "python"} | {
        c for lang, block in readme_blocks() if lang == "bash" for c in bash_commands(block)}
    assert ran == in_readme - set(NOT_RUN)
    assert len(ran) >= 25, f"the README's commands were not all found: {sorted(ran)}"
    created = next(v for c, v in outputs.items() if c.startswith("tuneforge jobs create -t examples/"))
    assert "Job complete!" in created
    evaluated = next(v for c, v in outputs.items() if c.startswith("tuneforge eval"))
    assert "ROUGE-L" in evaluated and "HTML report:" in evaluated
    assert (workdir / "support-merged" / "config.json").is_file() and (workdir / "support.gguf").is_file()
    legacy_follow = next(v for c, v in outputs.items() if c.startswith("openai api fine_tunes.follow"))
    assert "succeeded" in legacy_follow.lower() or "Uploaded model" in legacy_follow
