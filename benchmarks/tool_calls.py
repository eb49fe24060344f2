"""Tool calling on the built-in base, measured: held-out call accuracy before and after one fine-tune.

    HF_HUB_OFFLINE=1 nice -n 19 .venv/bin/python benchmarks/tool_calls.py [--n-epochs auto] [--keep DIR]

Everything goes through a live `tuneforge serve` (fresh TUNEFORGE_HOME) and the openai SDK, as a user
would: upload examples/support_tools_train.jsonl (`python examples/build_tool_dataset.py` makes it), create
a supervised job on `smollm2-135m-instruct` (`auto` hyperparameters unless given), wait for it, then send
every request of examples/support_tools_heldout.jsonl to the base and to the fine-tune with its `tools`,
`tool_choice: "auto"` and temperature 0. A request that needs a tool scores when the answer's first
`tool_calls` entry names the right function and its arguments are a JSON object that fits the schema
(required keys, no others, strings, enum values) and holds the request's values exactly. A question no
tool answers scores when the answer has no tool call. Prints each rate, tuned and base, with the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from benchkit import cpu_name, read_rows

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "examples" / "support_tools_train.jsonl"
HELDOUT = ROOT / "examples" / "support_tools_heldout.jsonl"
BASE = "smollm2-135m-instruct"




def _serve(home: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TUNEFORGE_HOME": str(home)}
    log = (home / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "tuneforge.cli.main", "serve", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited; see {home / 'serve.log'}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url + "/v1"
        except httpx.TransportError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("the server did not answer within 3 minutes")


def fits_schema(arguments: dict, schema: dict) -> bool:
    props = schema.get("properties", {})
    if set(schema.get("required", ())) - arguments.keys() or arguments.keys() - props.keys():
        return False
    for key, value in arguments.items():
        spec = props[key]
        if spec.get("type") == "string" and not isinstance(value, str):
            return False
        if "enum" in spec and value not in spec["enum"]:
            return False
    return True


def grade(row: dict, message) -> dict:
    """One held-out answer: which of the rates it counts toward."""
    expected = row["messages"][-1].get("tool_calls")
    calls = message.tool_calls or []
    if not expected:
        return {"kind": "no_tool", "ok": not calls}
    want = expected[0]["function"]
    out = {"kind": "call", "called": bool(calls), "right_function": False, "valid_arguments": False,
           "ok": False}
    if not calls:
        return out
    got = calls[0].function
    out["right_function"] = got.name == want["name"]
    try:
        args = json.loads(got.arguments)
    except ValueError:
        return out
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in row["tools"]}
    out["valid_arguments"] = isinstance(args, dict) and fits_schema(args, schemas.get(got.name, {}))
    out["ok"] = out["right_function"] and out["valid_arguments"] and args == json.loads(want["arguments"])
    return out


def measure(client, model: str, rows: list[dict]) -> dict:
    grades = []
    for row in rows:
        reply = client.chat.completions.create(
            model=model, messages=row["messages"][:-1], tools=row["tools"], tool_choice="auto",
            temperature=0, max_tokens=96)
        grades.append(grade(row, reply.choices[0].message))
    calls = [g for g in grades if g["kind"] == "call"]
    plain = [g for g in grades if g["kind"] == "no_tool"]

    def rate(items, key):
        return round(sum(g[key] for g in items) / max(1, len(items)), 3)

    return {"requests_needing_a_tool": len(calls), "called_a_tool": rate(calls, "called"),
            "right_function": rate(calls, "right_function"),
            "valid_arguments": rate(calls, "valid_arguments"),
            "right_call_exact_arguments": rate(calls, "ok"),
            "questions_needing_no_tool": len(plain), "answered_without_a_call": rate(plain, "ok")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-epochs", default="auto")
    parser.add_argument("--keep", type=Path, help="keep the server's home here instead of a temp folder")
    args = parser.parse_args()
    from openai import OpenAI

    home = args.keep or Path(tempfile.mkdtemp(prefix="tuneforge-tools-"))
    home.mkdir(parents=True, exist_ok=True)
    proc, url = _serve(home)
    try:
        client = OpenAI(base_url=url, api_key="local", timeout=600)
        heldout = read_rows(HELDOUT)
        base = measure(client, BASE, heldout)
        upload = client.files.create(file=TRAIN.open("rb"), purpose="fine-tune")
        epochs = args.n_epochs if args.n_epochs == "auto" else int(args.n_epochs)
        job = client.fine_tuning.jobs.create(model=BASE, training_file=upload.id, suffix="tools",
                                             hyperparameters={"n_epochs": epochs})
        started = time.monotonic()
        while (job := client.fine_tuning.jobs.retrieve(job.id)).status not in ("succeeded", "failed",
                                                                                "cancelled"):
            time.sleep(2)
        if job.status != "succeeded":
            raise SystemExit(f"the job {job.status}: {job.error}")
        train_seconds = time.monotonic() - started
        tuned = measure(client, job.fine_tuned_model, heldout)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print(json.dumps({"machine": cpu_name(), "train_rows": len(read_rows(TRAIN)),
                      "heldout_rows": len(heldout),
                      "hyperparameters": job.hyperparameters.model_dump(),
                      "trained_tokens": job.trained_tokens,
                      "train_seconds": round(train_seconds, 1), "base": base, "tuned": tuned}, indent=2))


if __name__ == "__main__":
    main()
