import json
import os
import subprocess
import sys

import pytest
from support.paths import ROOT

from client.fleet import Workload, load_fleet_file

SCRIPT = ROOT / "scripts" / "gpu_check.sh"


@pytest.mark.slow
def test_gpu_check_script_profiles_builds_a_gpu_fleet_and_simulates_on_cpu(tmp_path):
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "GPU_CHECK_MODELS": "cnn",
        "GPU_CHECK_MAX_BATCH": "4",
        "GPU_CHECK_REPEATS": "1",
        "GPU_CHECK_ROUNDS": "2",
        "GPU_CHECK_CLIENTS": "2",
    }

    done = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "check"), "--device", "cpu"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    folder = tmp_path / "check"
    profile = json.loads((folder / "profile-cnn.json").read_text())
    assert profile["input_shape"] == [3, 32, 32]
    for image in ("profile-cnn.png", "fig2b.png"):
        assert (folder / image).read_bytes().startswith(b"\x89PNG")
    fleet = load_fleet_file(str(folder / "fleet.json"), "gpu", Workload(1.0, 1.0), 1.0)
    assert len(fleet) == 2
    assert fleet[0].compute.latency_floor_s == profile["gpu_profile"]["latency_floor_s"]
    rounds = (folder / "results" / "rounds.jsonl").read_text().splitlines()
    assert len(rounds) == 2
