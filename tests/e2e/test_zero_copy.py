"""A Flower simulation gives the same rounds with ``ray-zero-copy`` on and off."""

import json
from pathlib import Path

import pytest
from support.simulate import rows, simulate


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_simulation_rounds_are_the_same_with_and_without_zero_copy(tmpdir):
    results = {}
    for switch in ("--ray-zero-copy", "--no-ray-zero-copy"):
        results[switch] = Path(tmpdir) / switch.lstrip("-")
        argv = ("--rounds", "3", "--clients", "2", switch, "--results-dir", str(results[switch]))
        done = simulate(tmpdir, *argv)
        assert done.returncode == 0, done.stdout + done.stderr
    on, off = results["--ray-zero-copy"], results["--no-ray-zero-copy"]
    assert json.loads((off / "summary.json").read_text())["config"]["ray-zero-copy"] is False
    assert rows(on) == rows(off) and len(rows(on)) == 3
