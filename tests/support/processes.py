"""Processes of the tests' runs: found through /proc, spawned and marked as orphans."""

import json
import os
import subprocess
import sys
from pathlib import Path

from cli.process import orphans


def spawn(env_home):
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, "FLWR_HOME": str(env_home)},
    )


def mark_killed(run_dir, home):
    """Leave in ``run_dir`` the marker of a run with FLWR_HOME ``home`` whose feel was killed."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run_dir / orphans.MARKER_FILE).write_text(
        json.dumps({"pid": dead.pid, "flwr_home": str(home)})
    )


def processes_mentioning(text: str) -> dict[int, str]:
    """Live processes whose command line or environment contains ``text``: pid -> command line."""
    found = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if text.encode() in cmdline + environ:
            found[int(proc.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found
