"""``feel pretrain`` writes a model file; ``initial-model`` starts a run from it."""

import json

import numpy as np
import pytest
import torch

from cli.compare.runner import run_inprocess
from cli.main import main
from task.config import resolve_run_config
from task.data import load_dataset
from task.errors import ConfigError
from task.model_file import file_sha256, load_model
from task.models import build_model
from task.partition import device_indices, holdout_split, partition_indices
from task.training import evaluate

HOLDOUT = 300


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pretrain") / "cnn.pt"
    argv = ["pretrain", "--holdout-examples", str(HOLDOUT), "--epochs", "3", "--out", str(path)]
    assert main(argv) == 0
    return path


def test_pretrain_records_the_accuracy_of_the_weights_it_writes(model_file):
    config = resolve_run_config({"holdout-examples": HOLDOUT})
    state, facts = load_model(str(model_file), config)
    assert facts.model == "cnn" and facts.dataset == "digits" and facts.epochs == 3
    model = build_model("cnn", 10, 1, 8)
    model.load_state_dict(state)
    data = load_dataset("digits")
    _, accuracy = evaluate(model, data.x_test, data.y_test, torch.device("cpu"))
    assert accuracy == facts.test_accuracy > 0.3  # trained: far above chance


def test_a_run_starts_at_the_recorded_accuracy_and_records_the_file(model_file, tmp_path):
    overrides = {"initial-model": str(model_file), "holdout-examples": HOLDOUT}
    config = resolve_run_config({**overrides, "num-server-rounds": 1, "min-nodes": 3})
    run_inprocess({**config, "results-dir": str(tmp_path)}, clients=3)
    summary = json.loads((tmp_path / "summary.json").read_text())
    _, facts = load_model(str(model_file), config)
    assert summary["initial_test_accuracy"] == facts.test_accuracy
    started = summary["model"]["initial_model"]
    assert started["sha256"] == file_sha256(model_file) and started["epochs"] == 3


def test_no_device_holds_the_held_out_slice():
    labels = load_dataset("digits").y_train
    pool, held_out = holdout_split(len(labels), HOLDOUT)
    assert len(held_out) == HOLDOUT and not set(pool) & set(held_out)
    config = resolve_run_config({"holdout-examples": HOLDOUT, "partition": "shards"})
    parts = device_indices(labels, 4, config)
    assert not set(np.concatenate(parts)) & set(held_out)
    plain = resolve_run_config({})
    unchanged = partition_indices(labels, 4, "iid", plain["seed"])
    for ours, theirs in zip(device_indices(labels, 4, plain), unchanged, strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"holdout-examples": 0}, "holds holdout-examples 300, the run has 0"),
        ({"holdout-examples": HOLDOUT, "model": "resnet18"}, "holds model 'cnn'"),
    ],
)
def test_a_model_file_that_does_not_fit_the_run_is_refused(model_file, overrides, reason):
    with pytest.raises(ConfigError, match=f"^initial-model: .*{reason}"):
        load_model(str(model_file), resolve_run_config(overrides))


def test_a_file_that_is_no_model_file_is_refused(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="does not read as a feel model file"):
        load_model(str(path), resolve_run_config({}))
    with pytest.raises(ConfigError, match="does not read as a feel model file"):
        load_model(str(tmp_path / "missing.pt"), resolve_run_config({}))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--holdout-examples", "0"], "--holdout-examples: must be >= 1, got 0"),
        (["--holdout-examples", "9999"], "--holdout-examples: must be in [0, 1437)"),
        (["--holdout-examples", "10", "--target-accuracy", "2"], "--target-accuracy: must be"),
        (["--holdout-examples", "10", "--model", "vgg"], "--model: unknown model 'vgg'"),
    ],
)
def test_bad_pretrain_options_exit_2_in_one_line(tmp_path, capsys, argv, message):
    assert main(["pretrain", *argv, "--out", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("feel pretrain: error: ") and message in err and "\n" not in err
