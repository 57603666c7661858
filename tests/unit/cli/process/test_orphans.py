"""Orphaned processes of a killed run (cli.process.orphans): found by FLWR_HOME and stopped."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.processes import mark_killed, spawn

from cli.errors import UsageError
from cli.process import orphans


def test_processes_of_a_killed_run_are_stopped(tmp_path):
    home = tmp_path / "feel-flwr-1"
    (home / "supernode-0").mkdir(parents=True)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    mark_killed(run_dir, home)
    link, node, stranger = spawn(home), spawn(home / "supernode-0"), spawn(f"{home}0")
    try:
        assert orphans.stop_orphans(run_dir) == 2
        assert link.wait(5) and node.wait(5)  # killed, reaped
        assert stranger.poll() is None
        assert not home.exists() and not (run_dir / orphans.MARKER_FILE).exists()
        assert orphans.stop_orphans(run_dir) == 0
    finally:
        for process in (link, node, stranger):
            process.kill()
            process.wait()


def test_children_that_lost_flwr_home_are_found(tmp_path):
    """Ray's agents overwrite the start of their environment with their title."""
    sleep = "import time; time.sleep(60)"
    spawn_child = f"subprocess.Popen([sys.executable, '-c', {sleep!r}], env={{}})"
    code = f"import subprocess, sys; {spawn_child}; {sleep}"
    parent = subprocess.Popen(
        [sys.executable, "-c", code], env={**os.environ, "FLWR_HOME": str(tmp_path)}
    )
    try:
        deadline = time.monotonic() + 10
        while len(pids := orphans.processes_of(str(tmp_path))) < 2:
            assert time.monotonic() < deadline, pids
            time.sleep(0.05)
        child = next(pid for pid in pids if pid != parent.pid)
        assert b"FLWR_HOME" not in Path(f"/proc/{child}/environ").read_bytes()
        assert pids == sorted([parent.pid, child])
    finally:
        for pid in orphans.processes_of(str(tmp_path)):
            os.kill(pid, signal.SIGKILL)
        parent.wait()


def test_a_live_run_keeps_its_results_directory(tmp_path):
    alive = spawn(tmp_path / "home")
    try:
        marker = {"pid": alive.pid, "flwr_home": str(tmp_path / "home")}
        (tmp_path / orphans.MARKER_FILE).write_text(json.dumps(marker))
        with pytest.raises(UsageError, match=f"in use by a running feel \\(pid {alive.pid}\\)"):
            orphans.stop_orphans(tmp_path)
        assert alive.poll() is None
    finally:
        alive.kill()
        alive.wait()
