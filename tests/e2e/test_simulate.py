"""``feel simulate`` end to end through Flower's Simulation Engine (Ray backend)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from support.paths import ROOT
from support.processes import processes_mentioning


@pytest.fixture
def short_tmpdir():
    """A short TMPDIR (Ray's socket paths must stay under 107 bytes)."""
    path = tempfile.mkdtemp(prefix="fe", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_simulate_writes_results_and_leaves_no_superlink(tmp_path, short_tmpdir):
    results = tmp_path / "results"
    command = [sys.executable, "-m", "cli.main", "simulate", "--clients", "3", "--rounds", "2",
               "--results-dir", str(results)]  # fmt: skip
    env = {**os.environ, "TMPDIR": short_tmpdir}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"results: {results}" in " ".join(done.stdout.split())
    rows = [json.loads(line) for line in (results / "rounds.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows] == [1, 2] and len(rows[0]["batch_sizes"]) == 3
    assert json.loads((results / "summary.json").read_text())["rounds"] == 2
    for plot in ("loss_vs_time.png", "accuracy_vs_time.png", "accuracy_vs_energy.png"):
        assert (results / plot).is_file(), plot
    assert processes_mentioning(short_tmpdir) == {}
