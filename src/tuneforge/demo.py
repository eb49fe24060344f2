"""`make demo`: the whole platform end to end on the bundled Harbor Bikes support data.

Starts `tuneforge serve` on a free port with a fresh TUNEFORGE_HOME under ./demo-output, prepares and
uploads the training set, fine-tunes the built-in base with live progress, evaluates base vs fine-tuned on
the held-out set, prints the comparison and the HTML report path, and says what to do next. Each step runs
the real `tuneforge` command (printed first), so the demo doubles as a tutorial.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console

from tuneforge.quiet import quiet_libraries

BASE = "smollm2-135m-instruct"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
console = Console(highlight=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tuneforge(*args: str, env: dict[str, str], capture: bool = False) -> subprocess.CompletedProcess:
    """Run one `tuneforge` command as a user would, echoing it first; stop the demo if it fails."""
    console.print(f"\n[bold cyan]$ tuneforge {' '.join(args)}[/]", soft_wrap=True)
    proc = subprocess.run([sys.executable, "-m", "tuneforge.cli.main", *args], env=env, text=True,
                          capture_output=capture)
    if proc.returncode != 0:
        if capture:
            sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"demo stopped: `tuneforge {args[0]} {args[1] if len(args) > 1 else ''}` failed "
                         f"(exit {proc.returncode}); see the message above")
    return proc


def _start_server(home: Path, port: int, log: Path, env: dict[str, str]) -> subprocess.Popen:
    console.print(f"\n[bold cyan]$ tuneforge serve --port {port}[/]  "
                  f"[dim](TUNEFORGE_HOME={home}, log {log})[/]", soft_wrap=True)
    with log.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "tuneforge.cli.main", "serve", "--port", str(port)],
                                env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_up(proc, port, log)
    except BaseException:  # Ctrl-C or SIGTERM while it starts: it must not outlive the demo
        _stop(proc)
        raise
    return proc


def _wait_until_up(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"demo stopped: the server exited; its log:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.5)
    raise SystemExit(f"demo stopped: the server did not answer within 3 minutes; see {log}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _evaluate(model: str, out: Path, limit: int | None, url: str, key: str) -> bool:
    """Base vs fine-tuned on the held-out set, through the demo's server (same code as `tuneforge eval`)."""
    from tuneforge.evaluation.report import language_changes, print_result, write_html
    from tuneforge.evaluation.run import Target, evaluate

    heldout = EXAMPLES / "support_heldout.jsonl"
    console.print(f"\n[bold cyan]$ tuneforge eval -m {model} -f {heldout.relative_to(Path.cwd())} "
                  f"--compare {BASE} -o {out / 'eval-report.html'}[/]", soft_wrap=True)
    result = evaluate([Target(model, url, key), Target(BASE, url, key)], heldout, limit=limit,
                      progress=lambda m: console.print(f"[dim]{m}[/]", markup=False))
    print_result(result, console, examples=6)
    report = write_html(result, out / "eval-report.html")
    (out / "eval.json").write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    tuned, base = result.models
    # Without server-side scoring the loss is unknown; the answers alone then decide.
    lower_loss = tuned.loss is None or base.loss is None or tuned.loss < base.loss
    ahead = tuned.rouge_l > base.rouge_l and lower_loss
    loss = "n/a" if tuned.loss is None or base.loss is None else f"{base.loss:.3f} -> {tuned.loss:.3f}"
    verdict = "[bold green]The fine-tuned model beats its base[/]" if ahead else \
        "[bold red]The fine-tuned model did NOT beat its base[/]"
    console.print(f"{verdict} on {len(result.references)} held-out questions: ROUGE-L {base.rouge_l:.3f} -> "
                  f"{tuned.rouge_l:.3f}{language_changes(result, base, tuned)}, "
                  f"exact match {base.exact_match:.0%} -> {tuned.exact_match:.0%}, "
                  f"loss {loss}.\nHTML report: {report}", soft_wrap=True)
    return ahead


def main() -> None:
    quiet_libraries()
    # The server runs in its own session, out of reach of a SIGTERM to the demo: turn the signal into an
    # exit, so the `finally` below stops the server instead of leaving it running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    out = Path("demo-output").resolve()
    home = out / "home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    env = {**os.environ, "TUNEFORGE_HOME": str(home), "OPENAI_BASE_URL": url, "HF_HUB_OFFLINE": "1",
           "OPENAI_API_KEY": os.environ.get("OPENAI_API_KEY", "sk-demo")}
    os.environ.update({k: env[k] for k in ("TUNEFORGE_HOME", "OPENAI_BASE_URL", "HF_HUB_OFFLINE")})
    console.rule("[bold]tuneforge demo: fine-tune a support bot on this machine")
    _tuneforge("models", "pull", BASE, env=env)
    server = _start_server(home, port, out / "serve.log", env)
    try:
        train = out / "support_train.jsonl"
        shutil.copyfile(EXAMPLES / "support_train.jsonl", train)
        _tuneforge("prepare", "-f", str(train), "-q", env=env)
        prepared = train.with_name("support_train_prepared.jsonl")
        _tuneforge("jobs", "create", "-t", str(prepared if prepared.is_file() else train), "-m", BASE,
                   "--suffix", "support", env=env)
        jobs = json.loads(_tuneforge("jobs", "list", "--limit", "1", "--json", env=env, capture=True).stdout)
        model = jobs["data"][0]["fine_tuned_model"]
        ahead = _evaluate(model, out, int(os.environ["TUNEFORGE_DEMO_LIMIT"])
                          if os.environ.get("TUNEFORGE_DEMO_LIMIT") else None, url, env["OPENAI_API_KEY"])
    finally:
        _stop(server)
    minutes, seconds = divmod(int(time.monotonic() - started), 60)
    console.rule(f"[bold]done in {minutes} min {seconds} s")
    console.print(
        f"Everything lives in {home}. Next steps:\n"
        f"  export TUNEFORGE_HOME={home}\n"
        f"  tuneforge serve                      # the API on http://127.0.0.1:8000/v1, the web app on /\n"
        f"  tuneforge chat -m {model}\n"
        f"  tuneforge eval -m {model} -f examples/support_heldout.jsonl --compare {BASE}\n"
        f"  tuneforge models export {model} --format merged\n"
        "  README.md walks through the same steps with curl, the openai SDK and the 0.x CLI.", soft_wrap=True)
    if not ahead:
        sys.exit(1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        console.print("\ndemo interrupted; its server is stopped. Run `make demo` again to start over.")
        sys.exit(130)
