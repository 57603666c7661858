"""Real ``feel simulate`` runs with injected faults: determinism, kill and resume, a stop."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from support.paths import ROOT
from support.processes import processes_mentioning
from support.simulate import command, rows, simulate

from cli.process import orphans

# Seed 3 at rate 0.3 injects, over 3 devices and the first 3 rounds: a ClientApp exception and
# a wrong batch size in round 1, a NaN gradient and a negative profile number in round 3.
RUN = ["--clients", "3", "--inject-faults", "0.3", "--seed", "3"]
# Rounds of the killed run: it is killed after round 2, and its ServerApp goes on until it is
# frozen, a round or two later; the rounds after that are left to the resumed run.
ROUNDS = 8

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc"),
]


def freeze(flwr_home):
    """SIGSTOP the processes of a run until none is new; return their pids."""
    frozen = set()
    while new := set(orphans.processes_of(flwr_home)) - frozen:
        for pid in new:
            os.kill(pid, signal.SIGSTOP)
        frozen |= new
        time.sleep(0.5)  # a fork under way when its parent stopped shows up now
    return frozen


def strays(tmpdir, frozen, timeout_s=30.0):
    """Processes of the test's runs that are alive, not frozen, after ``timeout_s`` to exit."""
    deadline = time.monotonic() + timeout_s
    while (alive := processes_mentioning(tmpdir)).keys() - frozen and time.monotonic() < deadline:
        time.sleep(0.2)
    return {pid: line for pid, line in alive.items() if pid not in frozen}


def final_model(directory):
    with np.load(Path(directory) / "checkpoint.npz") as archive:
        return {k: archive[k] for k in archive.files if k.startswith("model/")}


def assert_same_run(directory, reference):
    assert rows(directory) == rows(reference)
    model, expected = final_model(directory), final_model(reference)
    assert model.keys() == expected.keys()
    assert all(np.array_equal(model[k], expected[k]) for k in model)


def test_killed_run_resumes_to_the_same_result_whatever_the_workers(tmpdir):
    """Two runs of the same config: 2 Ray actors (1 CPU per client on 2 cores), and 1 actor
    killed with SIGKILL after round 2 and resumed; same rows (but wall times), same model."""
    reference = Path(tmpdir) / "reference"
    run = [*RUN, "--rounds", str(ROUNDS)]
    done = simulate(tmpdir, *run, "--cpus-per-client", "1", "--results-dir", str(reference))
    assert done.returncode == 0, done.stdout + done.stderr
    reasons = [reason for row in rows(reference) for reason in row["excluded"].values()]
    assert "error: injected fault: training failed on partition 0" in reasons
    assert [row["participants"] for row in rows(reference)][:3] == [[2], [0, 1, 2], [1]]

    directory = Path(tmpdir) / "killed"
    env = {**os.environ, "TMPDIR": tmpdir}
    argv = command(*run, "--cpus-per-client", "2", "--results-dir", str(directory))
    cli = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (directory / "rounds.jsonl").is_file() or len(rows(directory)) < 2:
        assert cli.poll() is None and time.monotonic() < deadline, "no round 2"
        time.sleep(0.05)
    cli.send_signal(signal.SIGKILL)
    cli.wait()
    # The SuperLink, ServerApp and Ray outlive the CLI; freeze them where they are. All of
    # them carry the run's FLWR_HOME, so the resume below can find and stop them.
    flwr_home = json.loads((directory / orphans.MARKER_FILE).read_text())["flwr_home"]
    frozen = freeze(flwr_home)
    assert frozen and strays(tmpdir, frozen) == {}
    done_rounds = json.loads(np.load(directory / "checkpoint.npz")["state"].tobytes())["round"]
    assert 2 <= done_rounds < ROUNDS
    written = rows(directory)  # the row of the checkpointed round may not be written yet
    assert len(written) in (done_rounds - 1, done_rounds)
    assert written == rows(reference)[: len(written)]  # 1 actor computes what 2 did

    done = simulate(tmpdir, "--resume", str(directory), "--cpus-per-client", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"resuming after round {done_rounds} of {ROUNDS}" in done.stdout
    assert_same_run(directory, reference)
    assert processes_mentioning(tmpdir) == {}


def test_run_stops_when_too_few_devices_are_left(tmpdir):
    directory = Path(tmpdir) / "stopped"
    argv = ["--clients", "2", "--rounds", "2", "--inject-faults", "1", "--min-devices", "2"]
    done = simulate(tmpdir, *argv, "--results-dir", str(directory))
    assert done.returncode == 1
    assert (
        "TooFewDevicesError: round 1: 0 usable device(s), fewer than min-devices 2" in done.stdout
    )
    assert (directory / "rounds.jsonl").read_text() == ""
    assert not (directory / "checkpoint.npz").exists() and not (directory / "summary.json").exists()
    assert processes_mentioning(tmpdir) == {}
