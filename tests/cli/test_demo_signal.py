"""`make demo` stopped by SIGTERM (a CI timeout, a supervisor, `kill`) takes its server down with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
from testkit import wait_for


def test_sigterm_to_the_demo_stops_its_server(tmp_path):
    demo = subprocess.Popen([sys.executable, "-m", "tuneforge.demo"], cwd=tmp_path, env={
        **os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "demo-output" / "serve.log"
    try:
        wait_for(lambda: log.is_file() and "Uvicorn running" in log.read_text(errors="replace"),
                 timeout=180, what="the demo's server to start")
        servers = [p for p in psutil.Process(demo.pid).children() if "serve" in p.cmdline()]
        assert servers, "the demo's `tuneforge serve` child was not found"
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) == 143
        gone, alive = psutil.wait_procs(servers, timeout=30)
        assert not alive, f"the demo's server is still running: {[p.pid for p in alive]}"
    finally:
        if demo.poll() is None:
            demo.kill()
