"""``system-model``: the cnn trains while the latencies are charged for DenseNet121."""

import json

import pytest

from cli.compare.runner import run_inprocess
from client.local import Node, device
from task.config import resolve_run_config
from task.errors import ConfigError
from task.flops import parameter_count, training_flops_per_sample
from task.system_model import PAPER_INPUT, charged_workload, system_network


def test_system_model_densenet121_charges_its_bits_and_flops(tmp_path):
    overrides = {"system-model": "densenet121", "num-server-rounds": 1, "min-nodes": 2}
    config = resolve_run_config({**overrides, "results-dir": str(tmp_path)})
    run_inprocess(config, clients=2)
    facts = json.loads((tmp_path / "summary.json").read_text())["model"]
    densenet, shape = system_network("densenet121")
    p = parameter_count(densenet)
    assert shape == PAPER_INPUT and facts["charged_model"] == "densenet121"
    assert facts["gradient_size_bits"] == 32 * p == facts["charged_num_params"] * 32  # Eq. (10)
    assert facts["num_params"] < p / 10  # the trained cnn
    flops = training_flops_per_sample(densenet, shape)
    assert charged_workload(config).training_flops_per_sample == flops
    # Eq. (9) by hand: the critical device's compute is B_k C / f_k plus its update U / f_k,
    # with C = DenseNet121's FLOPs per sample times cycles-per-flop.
    row = json.loads((tmp_path / "rounds.jsonl").read_text().splitlines()[0])
    by_hand = []
    for pid, batch in zip(row["partition_ids"], row["batch_sizes"], strict=True):
        compute = device(Node(pid, 2, config, {})).compute
        assert compute.cycles_per_sample == pytest.approx(flops * config["cycles-per-flop"])
        by_hand.append((batch * compute.cycles_per_sample + compute.update_cycles) / compute.cpu_hz)
    assert any(row["compute_latency_s"] == pytest.approx(t, rel=1e-9) for t in by_hand)


def test_unknown_system_model_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown system-model 'vgg'"):
        resolve_run_config({"system-model": "vgg"})
