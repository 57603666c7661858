import json

import pytest

from client.fleet import CpuProfile, FleetConfig, FleetError, GpuProfile, Workload, device_for
from client.fleet.sources import load_fleet_file
from scheduler.channel import path_gain

WORKLOAD = Workload(training_flops_per_sample=2e6, update_flops=1e5)

TOML = """
[[devices]]
distance_m = 120.0
cpu_hz = 1.4e9

[[devices]]
path_gain_db = -95.0
cpu_hz = 7e8
cycles_per_sample = 5e6
update_cycles = 1e4
latency_floor_s = 0.004
latency_slope_s = 1e-4
batch_threshold = 16
update_s = 1e-5
"""


def _write(tmp_path, text, name="fleet.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_toml_fleet_file_gives_the_devices_with_model_defaults(tmp_path):
    first, second = load_fleet_file(_write(tmp_path, TOML), "cpu", WORKLOAD, 2.0)
    assert first.compute == CpuProfile(1.4e9, cycles_per_sample=4e6, update_cycles=2e5)
    assert first.distance_m == 120.0 and first.path_gain == pytest.approx(path_gain(120.0))
    assert second.compute == CpuProfile(7e8, 5e6, 1e4)
    assert second.distance_m is None and second.path_gain == pytest.approx(10**-9.5)


def test_json_fleet_file_and_gpu_scenario(tmp_path):
    gpu = {"latency_floor_s": 0.01, "latency_slope_s": 1e-3, "batch_threshold": 8, "update_s": 0}
    devices = [{"distance_m": 50, **gpu}, {"distance_m": 60, **gpu}]
    path = _write(tmp_path, json.dumps({"devices": devices}), "fleet.json")
    config = FleetConfig(scenario="gpu")
    device = device_for(1, 2, config, WORKLOAD, fleet_file=path)
    assert device.compute == GpuProfile(0.01, 1e-3, 8.0, 0.0) and device.distance_m == 60


def test_node_config_overrides_a_fleet_file_device(tmp_path):
    path = _write(tmp_path, TOML)
    device = device_for(0, 2, FleetConfig(), WORKLOAD, path, {"cpu-hz": 2.1e9})
    assert device.compute.cpu_hz == 2.1e9 and device.distance_m == 120.0


@pytest.mark.parametrize(
    ("entries", "scenario", "message"),
    [
        ("cpu_hz = -1\ndistance_m = 5", "cpu", r"^devices\[1\]\.cpu_hz: must be > 0, got -1$"),
        ("distance_m = 5", "cpu", r"^devices\[1\]\.cpu_hz: missing \(needed for scenario 'cpu'\)"),
        (
            "distance_m = 5\ncpu_hz = 1e9\ncpu_ghz = 1",
            "cpu",
            r"^devices\[1\]\.cpu_ghz: unknown key",
        ),
        ("cpu_hz = 1e9", "cpu", r"^devices\[1\]\.distance_m: give exactly one of"),
        (
            "cpu_hz = 1e9\ndistance_m = 5\npath_gain_db = -90",
            "cpu",
            r"^devices\[1\]\.distance_m: give exactly one of",
        ),
        ('cpu_hz = "fast"\ndistance_m = 5', "cpu", r"^devices\[1\]\.cpu_hz: must be a finite"),
        ("cpu_hz = 1e9\ndistance_m = 0", "cpu", r"^devices\[1\]\.distance_m: must be > 0, got 0$"),
        (
            "cpu_hz = 1e9\npath_gain_db = 1e300",
            "cpu",
            r"^devices\[1\]\.path_gain_db: must be <= 0 dB, got 1e\+300$",
        ),
        (
            "distance_m = 5\nlatency_floor_s = 0.1\nlatency_slope_s = 0.1\nbatch_threshold = 4",
            "gpu",
            r"^devices\[1\]\.update_s: missing \(needed for scenario 'gpu'\)",
        ),
    ],
)
def test_bad_devices_are_named_by_index_and_key(tmp_path, entries, scenario, message):
    good = "distance_m = 5\ncpu_hz = 1e9\nlatency_floor_s = 0\nlatency_slope_s = 1\n"
    good += "batch_threshold = 1\nupdate_s = 0\n"
    text = f"[[devices]]\n{good}\n[[devices]]\n{entries}\n"
    with pytest.raises(FleetError, match=message):
        load_fleet_file(_write(tmp_path, text), scenario, WORKLOAD, 1.0)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("fleet.yaml", "devices: []", r"^fleet-file: expected a \.toml or \.json file"),
        ("fleet.toml", "[[devices]\n", r"^fleet-file: .*fleet\.toml is not valid TOML"),
        ("fleet.json", "{", r"^fleet-file: .*fleet\.json is not valid JSON"),
        ("fleet.json", '{"device": []}', r"^fleet-file: .* must hold exactly one key"),
        ("fleet.json", '{"devices": []}', r"^devices: must be a non-empty list"),
        ("fleet.json", '{"devices": [3]}', r"^devices\[0\]: must be a table"),
        ("fleet.json", "[" * 100_000 + "]" * 100_000, r"^fleet-file: .* is nested too deeply"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, name, text, message):
    with pytest.raises(FleetError, match=message):
        load_fleet_file(_write(tmp_path, text, name), "cpu", WORKLOAD, 1.0)


def test_missing_file_and_too_few_devices(tmp_path):
    with pytest.raises(FleetError, match=r"^fleet-file: cannot read .*nope\.toml"):
        load_fleet_file(str(tmp_path / "nope.toml"), "cpu", WORKLOAD, 1.0)
    path = _write(tmp_path, TOML)
    with pytest.raises(FleetError, match=r"^devices: .* lists 2 devices, none for partition 2$"):
        device_for(2, 3, FleetConfig(), WORKLOAD, path)
