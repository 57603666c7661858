import pytest
from flwr.app import ArrayRecord, MetricRecord
from support.records import round_record
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cli.main import build_parser
from cli.simulate import run_config
from server.tensorboard import TensorBoardWriter, log_directory, step, tensorboard_hook
from strategy import FinishedRound
from task.errors import ConfigError

INITIAL = {"test_loss": 2.3, "test_accuracy": 0.1}


def record(round_, sim_time_s, device_energy_j=(1.0, 0.0, 2.0)):
    return round_record(
        round_,
        sim_time_s,
        uplink_latency_s=0.15,
        downlink_latency_s=0.05,
        partition_ids=[0, 1, 2],
        participants=[0, 2],
        excluded={"1": "faulty"},
        batch_sizes=[10, 20, 40],
        uplink_slots_s=[0.004, 0.006, 0.001],
        downlink_slots_s=[0.005, 0.005, 0.005],
        global_batch=70,
        train_loss=1.5 / round_,
        sim_energy_j=3.0 * round_,
        energy_j=3.0,
        compute_energy_j=2.0,
        upload_energy_j=1.0,
        device_energy_j=list(device_energy_j),
    )


def finished(rec, metrics=None):
    metrics = MetricRecord(metrics) if metrics is not None else None
    return FinishedRound(rec, ArrayRecord(), metrics, {}, {}, {}, last=False)


def events(directory):
    accumulator = EventAccumulator(str(directory), size_guidance={"scalars": 0, "histograms": 0})
    accumulator.Reload()
    return accumulator


def scalars(accumulator, tag):
    return [(e.step, pytest.approx(e.value)) for e in accumulator.Scalars(tag)]


def test_rounds_are_written_at_the_simulated_time_in_milliseconds(tmp_path):
    writer = TensorBoardWriter(tmp_path, lambda: INITIAL)
    writer(finished(record(1, 0.5), {"test_loss": 1.2, "test_accuracy": 0.6}))
    writer(finished(record(2, 1.0004)))  # not evaluated
    writer(finished(record(3, 1.5), {"test_loss": 0.8, "test_accuracy": 0.75}))
    writer.close()
    board = events(tmp_path)
    assert scalars(board, "test/loss") == [(0, 2.3), (500, 1.2), (1500, 0.8)]
    assert scalars(board, "test/accuracy") == [(0, 0.1), (500, 0.6), (1500, 0.75)]
    assert scalars(board, "train/loss") == [(500, 1.5), (1000, 0.75), (1500, 0.5)]
    for tag, value in [
        ("latency/round_s", 0.5),
        ("latency/compute_s", 0.3),
        ("latency/uplink_s", 0.15),
        ("latency/downlink_s", 0.05),
        ("schedule/global_batch", 70),
        ("schedule/efficiency", 10.9),
        ("schedule/participants", 2),
        ("train/learning_rate", 0.07),
    ]:
        assert scalars(board, tag) == [(500, value), (1000, value), (1500, value)], tag
    histograms = board.Tags()["histograms"]
    assert set(histograms) == {
        "devices/batch_size", "devices/uplink_slot_s", "devices/downlink_slot_s",
        "devices/energy_j",
    }  # fmt: skip
    batch = board.Histograms("devices/batch_size")
    assert [h.step for h in batch] == [500, 1000, 1500]
    summary = batch[0].histogram_value
    assert (summary.num, summary.min, summary.max, summary.sum) == (3, 10, 40, 70)


def test_energy_is_written_per_round_and_in_total(tmp_path):
    writer = TensorBoardWriter(tmp_path, dict)
    writer(finished(record(1, 0.25)))
    writer(finished(record(2, 0.75, device_energy_j=(1.5, 0.0, 1.5))))
    writer.close()
    board = events(tmp_path)
    assert scalars(board, "energy/round_j") == [(250, 3.0), (750, 3.0)]
    assert scalars(board, "energy/compute_j") == [(250, 2.0), (750, 2.0)]
    assert scalars(board, "energy/upload_j") == [(250, 1.0), (750, 1.0)]
    assert scalars(board, "energy/total_j") == [(250, 3.0), (750, 6.0)]
    energy = [h.histogram_value for h in board.Histograms("devices/energy_j")]
    assert [(e.num, e.max, e.sum) for e in energy] == [(3, 2.0, 3.0), (3, 1.5, 3.0)]
    assert "test/loss" not in board.Tags()["scalars"]  # no initial metrics, none evaluated


def test_a_resumed_run_drops_the_killed_runs_later_events(tmp_path):
    killed = TensorBoardWriter(tmp_path, lambda: INITIAL)
    for round_ in (1, 2, 3):
        killed(finished(record(round_, 0.5 * round_)))
    killed.close()  # checkpointed after round 2 (1.0 s); round 3 was lost
    resumed = TensorBoardWriter(tmp_path, lambda: INITIAL, resumed_s=1.0)
    resumed(finished(record(3, 1.4)))
    resumed.close()
    assert [s for s, _ in scalars(events(tmp_path), "train/loss")] == [500, 1000, 1400]


def test_step_rounds_to_milliseconds():
    assert [step(0.0), step(0.0004), step(0.0006), step(12.3456)] == [0, 0, 1, 12346]


def test_the_log_directory_is_absolute_and_not_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert log_directory("tb") == tmp_path / "tb"
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"tensorboard: .*file.* is not a directory"):
        log_directory("file")


def test_no_hook_without_a_directory():
    assert tensorboard_hook("", None, None) is None


def test_the_simulate_option_is_resolved_to_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = run_config(build_parser().parse_args(["simulate", "--tensorboard", "runs/tb"]))
    assert config["tensorboard"] == str(tmp_path / "runs" / "tb")
    assert run_config(build_parser().parse_args(["simulate"]))["tensorboard"] == ""
