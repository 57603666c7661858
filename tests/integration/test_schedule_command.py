"""`feel schedule`: JSON in, JSON out; bad input is one line on stderr with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cli.main import main
from scheduler import Instance, evaluate

INSTANCE = {
    "scenario": "cpu",
    "gradient_bits": 1216000,
    "devices": [
        {
            "uplink_rate_bps": 9e7,
            "downlink_rate_bps": 9e7,
            "cpu_hz": 7e8,
            "cycles_per_sample": 2e6,
            "update_cycles": 1e5,
        },
        {
            "uplink_rate_bps": 1.5e8,
            "downlink_rate_bps": 1.5e8,
            "cpu_hz": 2.1e9,
            "cycles_per_sample": 2e6,
            "update_cycles": 1e5,
        },
    ],
}


@pytest.fixture
def instance_file(tmp_path):
    path = tmp_path / "instance.json"
    path.write_text(json.dumps(INSTANCE))
    return path


def test_prints_the_allocation_contract(instance_file, capsys):
    assert main(["schedule", str(instance_file)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["policy"] == "optimal"
    assert set(out) >= {
        "batch_sizes",
        "uplink_slots_s",
        "downlink_slots_s",
        "uplink_latency_s",
        "downlink_latency_s",
        "round_latency_s",
        "global_batch",
        "efficiency",
        "relaxed_efficiency",
    }
    again = evaluate(
        Instance.from_dict(INSTANCE),
        out["batch_sizes"],
        out["uplink_slots_s"],
        out["downlink_slots_s"],
        policy="x",
    )
    assert out["round_latency_s"] == pytest.approx(again.round_latency_s)
    assert out["global_batch"] == sum(out["batch_sizes"])


def test_policy_and_equal_slots(instance_file, capsys):
    assert main(["schedule", str(instance_file), "--policy", "full", "--equal-slots"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["batch_sizes"] == [128, 128]
    assert out["uplink_slots_s"] == pytest.approx([0.005, 0.005])


def bad(tmp_path, text, *args):
    path = tmp_path / "bad.json"
    path.write_text(text)
    return [str(path), *args]


def mutated(**changes):
    data = json.loads(json.dumps(INSTANCE))
    for key, value in changes.items():
        if key.startswith("d1_"):
            data["devices"][1][key[3:]] = value
        else:
            data[key] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "args", "expected"),
    [
        ("{not json", [], "INSTANCE.json: not valid JSON"),
        (mutated(d1_cpu_hz=-1), [], "devices[1].cpu_hz: must be > 0"),
        (mutated(d1_uplink_rate_bps=0), [], "devices[1].uplink_rate_bps: must be > 0"),
        (mutated(d1_cpu_hz="fast"), [], "devices[1].cpu_hz: must be a number"),
        (mutated(uplink_frame_s=0), [], "uplink_frame_s: must be > 0"),
        (mutated(min_batch=9, max_batch=3), [], "min_batch: must be <= max_batch"),
        (mutated(devices=[]), [], "devices: must be a non-empty list"),
        (mutated(scenario="tpu"), [], "scenario: must be one of cpu, gpu"),
        (mutated(colour="red"), [], "colour: unknown field"),
        (mutated().replace("2100000000.0", "NaN"), [], "devices[1].cpu_hz: must be finite"),
        (
            mutated().replace("1.5e8", "Infinity").replace("150000000.0", "Infinity"),
            [],
            "devices[1].uplink_rate_bps: must be finite",
        ),
        (mutated(), ["--policy", "nope"], "--policy: unknown policy 'nope'"),
        (
            mutated(),
            ["--policy", "fixed", "--batch", "500"],
            "--batch: must lie in [1, 128], got 500",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, text, args, expected):
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "schedule", *bad(tmp_path, text, *args)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert expected in result.stderr


def test_missing_file(tmp_path, capsys):
    assert main(["schedule", str(tmp_path / "nope.json")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "INSTANCE.json: cannot read" in captured.err


def test_schedule_does_not_import_torch_or_flwr():
    code = (
        "import sys, cli.main; cli.main.build_parser(); "
        "print('torch' in sys.modules, 'flwr' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]
