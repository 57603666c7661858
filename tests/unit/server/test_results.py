import json

import pytest
from support.records import round_record

from server.plots import PLOTS, plot_curves
from server.results import ResultsWriter, read_rounds, round_row, summarize


def record(round_, sim_time_s):
    return round_record(round_, sim_time_s)


REQUIRED = {
    "round", "sim_time_s", "round_latency_s", "compute_latency_s", "uplink_latency_s",
    "downlink_latency_s", "global_batch", "batch_sizes", "uplink_slots_s", "learning_rate",
    "efficiency", "train_loss", "test_loss", "test_accuracy", "wall_time_s", "energy_j",
    "compute_energy_j", "upload_energy_j", "idle_energy_j", "device_energy_j", "sim_energy_j",
}  # fmt: skip


def write_two_rounds(directory):
    writer = ResultsWriter(directory)
    for i in (1, 2):
        metrics = {"test_loss": 1.0 / i, "test_accuracy": 0.4 * i}
        row = round_row(record(i, 0.5 * i), metrics, 3.0 * i, 2.5, {"train": 2.0}, {"0": "h"})
        writer.append_round(row)
    return writer


def test_rounds_jsonl_has_one_object_per_round_with_the_required_keys(tmp_path):
    write_two_rounds(tmp_path / "out")
    lines = (tmp_path / "out" / "rounds.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["round"] for r in rows] == [1, 2]
    assert all(set(r) >= REQUIRED for r in rows)
    assert rows[1]["batch_sizes"] == [10, 20] and rows[1]["test_accuracy"] == 0.8


def test_a_new_writer_empties_an_old_rounds_file(tmp_path):
    write_two_rounds(tmp_path)
    ResultsWriter(tmp_path)
    assert read_rounds(tmp_path) == []


def test_summary_holds_config_final_accuracy_and_times(tmp_path):
    writer = write_two_rounds(tmp_path)
    initial = {"test_loss": 2.3, "test_accuracy": 0.1}
    summary = summarize({"seed": 3}, read_rounds(tmp_path), initial, 12.0, {"num_params": 7})
    path = writer.write_summary(summary)
    saved = json.loads(path.read_text())
    assert saved["config"] == {"seed": 3} and saved["model"] == {"num_params": 7}
    assert saved["final_test_accuracy"] == pytest.approx(0.8)
    assert saved["initial_test_accuracy"] == 0.1
    assert saved["sim_time_s"] == 1.0 and saved["wall_time_s"] == 12.0
    assert saved["rounds"] == 2 and saved["mean_round_wall_time_s"] == 2.5
    assert saved["sim_energy_j"] == 0.5
    assert saved["device_energy_j"] == {"0": pytest.approx(0.2), "1": pytest.approx(0.3)}


def test_plots_are_png_files(tmp_path):
    write_two_rounds(tmp_path)
    initial = {"test_loss": 2.3, "test_accuracy": 0.1}
    paths = plot_curves(read_rounds(tmp_path), initial, tmp_path, label="proposed")
    assert sorted(p.name for p in paths) == sorted(PLOTS)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)
