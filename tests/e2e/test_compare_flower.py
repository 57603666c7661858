"""``feel compare --engine flower``: the Simulation Engine gives the in-process engine's rounds."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest
from support.paths import ROOT

from server.results import WALL_KEYS

GRID = ["--schemes", "model-feel", "--clients", "3", "--partitions", "iid",
        "--rounds", "2", "--sweep-learning-rates", ""]  # fmt: skip


@pytest.fixture
def short_tmpdir():
    """A short TMPDIR (Ray's socket paths must stay under 107 bytes)."""
    path = tempfile.mkdtemp(prefix="fc", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def compare(results, *extra, env=None):
    command = [sys.executable, "-m", "cli.main", "compare", *GRID, "--results-dir", str(results),
               *extra]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((results / "comparison.json").read_text())


def rounds(results, run):
    lines = (results / run["directory"] / "rounds.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in WALL_KEYS} for line in lines]


@pytest.mark.slow
def test_flower_engine_reproduces_the_in_process_runs(tmp_path, short_tmpdir):
    env = {**os.environ, "TMPDIR": short_tmpdir}
    flower = compare(tmp_path / "flower", "--engine", "flower", env=env)
    inprocess = compare(tmp_path / "inprocess")
    assert flower["engine"] == "flower" and inprocess["engine"] == "inprocess"
    for a, b in zip(flower["runs"], inprocess["runs"], strict=True):
        assert a["scheme"] == b["scheme"] and a["rounds"] == 2
        assert rounds(tmp_path / "flower", a) == rounds(tmp_path / "inprocess", b)
        assert (tmp_path / "flower" / a["directory"] / "compare.log").is_file()
