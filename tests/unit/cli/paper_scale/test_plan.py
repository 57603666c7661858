"""The paper-scale plan: budgets from Eq. (9), the grids of Table II, bits, GPU and regime map."""

import pytest

from cli.paper_scale.plan import FULL, QUICK, TABLE_II_SCHEMES, grids, run_config
from strategy import EvaluationSchedule
from task.flops import training_flops_per_sample
from task.system_model import system_network


@pytest.fixture(scope="module")
def full_grids(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper-scale")
    return {g.name: g.settings for g in grids(FULL, run_config(FULL, root, ""))}


def test_budgets_are_local_epochs_of_the_slowest_device_by_eq_9(full_grids):
    network, shape = system_network("densenet121")
    flops = training_flops_per_sample(network, shape)
    cases = (("table2-K6", 6, 0.1), ("table2-K12", 12, 0.1), ("regime-cpf0.03-b32", 6, 0.03),
             ("regime-cpf0.01-bits", 6, 0.01))  # fmt: skip
    for name, k, cycles in cases:
        settings = full_grids[name]
        epoch = (60_000 - 3_000) / k * flops * cycles / 0.7e9
        assert settings.time_budget_s == round(3 * epoch)
        assert settings.run_config["cycles-per-flop"] == cycles
        every = settings.time_budget_s / FULL.evaluations
        assert settings.run_config["eval-every-s"] == every
    assert full_grids["gpu"].time_budget_s == round(0.25 * 3 * (57_000 / 6) * flops * 0.1 / 0.7e9)


def test_the_full_plan_runs_table_ii_bits_fig_3_gpu_and_the_regime_map(full_grids):
    table = full_grids["table2-K6"]
    assert table.schemes == TABLE_II_SCHEMES and table.partitions == ("iid", "shards")
    assert table.repeats == 1 and not table.decay_runs() and not table.individual_patiences
    rates = {(r.scheme, r.learning_rate) for r in table.runs()}
    assert ("gradient-feel", 0.001) in rates and ("proposed", None) in rates and len(rates) == 7
    config = table.run_config
    assert config["system-model"] == "densenet121" and config["dataset"] == "fashion-mnist"
    assert config["initial-model"].endswith("pretrained-cnn.pt")
    assert config["holdout-examples"] == 3000 and config["patience"] == 1
    assert full_grids["bits"].gradient_bits == (8, 1)
    assert full_grids["gpu"].scenario == "gpu"
    sweep = full_grids["lr-sweep"]
    assert [r.learning_rate for r in sweep.runs()] == [0.025, 0.1]
    assert sweep.cells() == [(12, "shards", 32)]
    assert full_grids["regime-cpf0.03-bits"].gradient_bits == (1,)
    assert sum(len(s.runs()) for s in full_grids.values()) == 28 + 4 + 2 + 4 + 2 * (3 + 2)


def test_the_quick_plan_is_the_same_grids_on_one_cell(tmp_path):
    quick = {g.name: g.settings for g in grids(QUICK, run_config(QUICK, tmp_path, ""))}
    assert set(quick) == {"table2-K6", "bits", "lr-sweep", "gpu", "regime-cpf0.01-b32",
                          "regime-cpf0.01-bits"}  # fmt: skip
    assert all(s.cells()[0][:2] == (6, "iid") for s in quick.values())
    assert sum(len(s.runs()) for s in quick.values()) == 14


def test_an_evaluation_schedule_in_seconds_takes_the_rounds_crossing_a_multiple():
    schedule = EvaluationSchedule(every_rounds=1, every_s=10.0)
    assert not schedule.due(1, 0.0, 9.9, last=False)
    assert schedule.due(2, 9.9, 10.0, last=False) and schedule.due(3, 10.0, 35.0, last=False)
    assert not schedule.due(4, 35.0, 39.0, last=False) and schedule.due(5, 35.0, 36.0, last=True)
    assert EvaluationSchedule(every_rounds=3).due(6, 0.0, 1.0, last=False)
    assert not EvaluationSchedule(every_rounds=3).due(5, 0.0, 1.0, last=False)
