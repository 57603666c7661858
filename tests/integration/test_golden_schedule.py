"""Seeded runs give the rounds recorded before the architecture redesign (commit d86b7c7).

``tests/data/golden/<scheme>.jsonl`` holds the rows of ``rounds.jsonl`` (wall-clock fields
left out) of ``--rounds 5 --clients 4 --seed 3`` runs through the in-process grid, which
gives the same rows as Flower's Simulation Engine for these runs (checked when recorded).
The batches must match exactly, the slots and the simulated clock to the last bits (numpy's
vector code differs by an ulp from one CPU to another), the losses to float32 training's
noise, which a few local iterations grow to 1e-5 across CPUs, and the rest of the row to
1e-9. The latency split (compute, uplink, downlink) was recorded again when ties on the
critical path came to be broken by device index (:func:`scheduler.allocation.last_to_finish`);
before, the CPU's last bits picked the device. The gradient schemes' test loss and accuracy
were recorded again when their BatchNorm statistics became the global batch's
(:func:`strategy.aggregation.updated_statistics`); nothing else in their rows changed.
The runs use the default aggregation, ``clipped`` at 4 median norms, which binds in none of
their rounds (the largest gradient norm is 3.8 median norms, in ``random``'s round 5), so
they are Eq. (1)'s rounds.
"""

import json
from pathlib import Path

import pytest
from support.paths import TESTS

from cli.compare.runner import run_inprocess
from server.results import WALL_KEYS
from task.config import resolve_run_config

GOLDEN = TESTS / "data" / "golden"
SCHEMES = {
    "proposed": {},
    "full": {"scheme": "full", "equal-slots": True},
    "random": {"scheme": "random"},
    "model-feel": {"scheme": "model-feel"},
    "individual": {"scheme": "individual"},
}
SLOTS_AND_CLOCK = ("uplink_slots_s", "downlink_slots_s", "round_latency_s", "sim_time_s")
SCHEDULE = ("batch_sizes", *SLOTS_AND_CLOCK)
LOSSES = ("train_loss", "test_loss")
# The devices' energy, recorded since (its values: tests/unit/scheduler/test_energy.py); here
# it must add up: per device to the round, round by round to the total.
ENERGY = (
    "sim_energy_j",
    "energy_j",
    "compute_energy_j",
    "upload_energy_j",
    "idle_energy_j",
    "device_energy_j",
)


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("name", SCHEMES)
def test_seeded_run_matches_the_recorded_rounds(tmp_path, name):
    config = resolve_run_config(
        {"num-server-rounds": 5, "seed": 3, "min-nodes": 4, "results-dir": str(tmp_path)}
        | SCHEMES[name]
    )
    run_inprocess(config, clients=4)
    rows = _rows(tmp_path / "rounds.jsonl")
    golden = _rows(GOLDEN / f"{name}.jsonl")
    assert len(rows) == len(golden)
    spent = 0.0
    for row, expected in zip(rows, golden, strict=True):
        assert row["batch_sizes"] == expected["batch_sizes"], row["round"]
        for field in SLOTS_AND_CLOCK:
            assert row[field] == pytest.approx(expected[field], rel=1e-12), (row["round"], field)
        assert row["energy_j"] == pytest.approx(sum(row["device_energy_j"]))
        assert row["energy_j"] == pytest.approx(row["compute_energy_j"] + row["upload_energy_j"])
        assert row["idle_energy_j"] == 0.0  # not counted by default
        spent += row["energy_j"]
        assert row["sim_energy_j"] == pytest.approx(spent) and row["energy_j"] > 0
        others = {k: v for k, v in row.items() if k not in (*SCHEDULE, *WALL_KEYS, *ENERGY)}
        assert set(others) | set(SCHEDULE) == set(expected)
        for field, value in others.items():
            if isinstance(value, float):
                rel = 1e-4 if field in LOSSES else 1e-9
                assert value == pytest.approx(expected[field], rel=rel), (row["round"], field)
            else:
                assert value == expected[field], (row["round"], field)
