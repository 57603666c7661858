"""``feel simulate``: bad inputs fail up front; ``--resume`` checks, stops a killed run first."""

import json
import signal

import pytest
from support.processes import mark_killed, spawn
from support.usage import fails_up_front

from cli import simulate
from cli.main import main
from cli.process import orphans
from server import checkpoint as ckpt
from task.config import resolve_run_config


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--dataset", "cifar10"], "--data-dir: required for dataset 'cifar10'"),
        (["--data-dir", "/no/such/dir"], "--data-dir: no such directory '/no/such/dir'"),
        (["--clients", "2000"], "--clients: 2000 partitions with scheme 'iid' need at least 2000"),
        (["--clients", "800", "--partition", "shards"], "--clients: 800 partitions with scheme"),
        (["--clients", "20", "--min-batch", "100"], "--min-batch: 100 exceeds the 71 examples"),
        (["--min-batch", "9", "--max-batch", "8"], "--min-batch: 9 exceeds max-batch 8"),
        (["--min-devices", "7"], "--min-devices: 7 exceeds the 6 devices of the run"),
        (["--min-devices", "0"], "--min-devices: must be >= 1, got 0"),
        (["--inject-faults", "1.5"], "--inject-faults: must be between 0 and 1, got 1.5"),
        (["--attacker", "6"], "--attacker: 6 is no partition id of the 6 devices"),
        (["--max-distance-m", "5"], "--max-distance-m: 5 is not above min-distance-m 10"),
        (["--attack", "sybil"], "--attack: unknown attack 'sybil'"),
        (["--aggregation", "krum"], "--aggregation: unknown aggregation 'krum'"),
        (["--clip-multiple", "0"], "--clip-multiple: must be > 0, got 0.0"),
        (["--tx-power-dbm", "nan"], "--tx-power-dbm: must be a finite number, got nan"),
        (["--noise-dbm-per-hz=-inf"], "--noise-dbm-per-hz: must be a finite number, got -inf"),
        (["--bandwidth-hz=-1e6"], "--bandwidth-hz: must be > 0, got -1000000.0"),
        (["--cycles-per-flop", "0"], "--cycles-per-flop: must be > 0, got 0.0"),
        (["--max-flops-per-cycle", "0"], "--max-flops-per-cycle: must be > 0, got 0.0"),
        (["--max-gpu-flops=-1e15"], "--max-gpu-flops: must be > 0, got -1000000000000000.0"),
        (["--min-flops=-1"], "--min-flops: must be >= 0, got -1.0"),
        (["--rounds", "-3"], "--rounds: must be >= 1, got -3"),
        (["--clients", "-1"], "--clients: must be >= 1, got -1"),
        (["--model", "vgg16"], "--model: unknown model 'vgg16'"),
        (["--gpu-power-w=-5"], "--gpu-power-w: must be >= 0, got -5.0"),
        (["--effective-capacitance=-1e-28"], "--effective-capacitance: must be >= 0, got -1e-28"),
    ],
)
def test_bad_input_fails_before_any_training(argv, message, tmp_path, capsys):
    assert message in fails_up_front(argv, tmp_path, capsys)


def test_a_tensorboard_path_that_is_a_file_fails_up_front(tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    argv = ["--tensorboard", str(tmp_path / "taken")]
    line = fails_up_front(argv, tmp_path, capsys)
    assert "--tensorboard:" in line and "exists and is not a directory" in line


def test_cifar10_folder_without_the_files_fails_up_front(tmp_path, capsys):
    argv = ["--dataset", "cifar10", "--data-dir", str(tmp_path)]
    assert f"--data-dir: CIFAR-10 not found in {tmp_path}" in fails_up_front(argv, tmp_path, capsys)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[devices]]\ndistance_m = 50.0\ncpu_hz = -1.0\n", "devices[0].cpu_hz: must be > 0"),
        ("[[devices]]\ndistance_m = 50.0\ncpu_hz = 1e9\n", "lists 1 devices, fewer than the 2"),
        ("[[devices]]\ncpu_hz = 1e9\n", "devices[0].distance_m: give exactly one of"),
        ("devices = 3\n", "--fleet-file: devices: must be a non-empty list"),
        ("[[devices]\n", "is not valid TOML"),
    ],
)
def test_bad_fleet_file_fails_up_front(text, message, tmp_path, capsys):
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(text)
    err = fails_up_front(["--clients", "2", "--fleet-file", str(fleet)], tmp_path, capsys)
    assert err.startswith("--fleet-file: ") and message in err


def test_profile_report_is_not_a_fleet_file(tmp_path, capsys):
    report = tmp_path / "profile.json"  # what `feel profile` writes
    report.write_text(json.dumps({"model": "cnn", "gpu_profile": {}, "cpu_profile": {}}))
    err = fails_up_front(["--fleet-file", str(report)], tmp_path, capsys)
    assert "--fleet-file: " in err and "must hold exactly one key, 'devices'" in err


def a_finished_run(directory, rounds):
    config = resolve_run_config({"num-server-rounds": rounds, "min-nodes": 3,
                                 "results-dir": str(directory)})  # fmt: skip
    directory.mkdir()
    (directory / "run_config.toml").write_text(
        "\n".join(f"{k} = {json.dumps(v)}" for k, v in config.items())
    )
    ckpt.save_checkpoint(
        directory,
        ckpt.Checkpoint(rounds, config, {}, {}, [], {}, 1.0, ckpt.rng_state()),
    )


def test_resume_checks_its_directory_and_keeps_the_options(tmp_path, capsys):
    assert main(["simulate", "--resume", str(tmp_path)]) == 2
    assert "--resume: no run_config.toml in" in capsys.readouterr().err
    a_finished_run(tmp_path / "run", rounds=3)
    for option in (["--model", "resnet18"], ["--clients", "4"], ["--rounds", "5"]):
        assert main(["simulate", "--resume", str(tmp_path / "run"), *option]) == 2
        err = capsys.readouterr().err
        assert f"{option[0]}: cannot be changed when resuming a run (--resume)" in err
    (tmp_path / "run" / "summary.json").write_text("{}")
    assert main(["simulate", "--resume", str(tmp_path / "run")]) == 0
    assert "nothing to resume: all 3 rounds are done" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("summary", "said"),
    [
        (False, "resuming after round 3 of 3"),  # killed before its summary: write it
        (True, "nothing to resume: all 3 rounds are done"),  # the orphan finished the run
    ],
)
def test_resume_stops_the_killed_runs_processes_first(summary, said, tmp_path, monkeypatch, capsys):
    """Whether or not rounds are left, the SuperLink & co. of the killed run are stopped
    before the checkpoint is read (and before any new run starts)."""
    run_dir, home = tmp_path / "run", tmp_path / "feel-flwr-1"
    a_finished_run(run_dir, rounds=3)
    if summary:
        (run_dir / "summary.json").write_text("{}")
    mark_killed(run_dir, home)
    orphan = spawn(home)
    new_runs = []
    monkeypatch.setattr(simulate, "run_app", lambda *args: new_runs.append(orphan.poll()) or 0)
    try:
        assert main(["simulate", "--resume", str(run_dir)]) == 0
        out = capsys.readouterr().out
        assert orphan.wait(5) == -signal.SIGKILL
        assert new_runs == ([] if summary else [-signal.SIGKILL])  # stopped before it started
        assert out.splitlines()[0] == "stopped 1 process(es) that the killed run left running"
        assert said in out and not (run_dir / orphans.MARKER_FILE).exists()
    finally:
        orphan.kill()
        orphan.wait()
