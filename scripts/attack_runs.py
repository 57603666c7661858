"""One attacker among the devices: final accuracy and the attacker's weight, before and after.

Usage: python scripts/attack_runs.py [--clients 6] [--rounds 60] [--attacker 0] [--seed 0]

Runs the default simulation (digits CNN, the proposed scheme) in process, clean and with
partition ``--attacker`` attacking in every round, under the defaults (``clipped``, the
plausibility bounds) and under the behaviour before them (``mean``, bounds that no report
reaches); a foreign partition claim only under the defaults, since the partition pins have
no switch (before them, both devices were left out). For each run it prints the final test
accuracy, the attacker's mean weight |B_k| / B in Eq. (1) (0 in a round it is excluded
from) and its batch in round 1.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from cli.compare.runner import run_inprocess
from task.config import resolve_run_config

# Bounds no report reaches and Eq. (1) itself: the strategy before bounded updates.
UNBOUNDED = {"aggregation": "mean", "max-cpu-hz": 1e15, "min-distance-m": 1e-3}
RUNS = {
    "clean": {},
    "scaled-gradient, before": {"attack": "scaled-gradient", **UNBOUNDED},
    "scaled-gradient, after": {"attack": "scaled-gradient"},
    "lying-profile, before": {"attack": "lying-profile", **UNBOUNDED},
    "lying-profile, after": {"attack": "lying-profile"},
    "foreign-partition, after": {"attack": "foreign-partition"},
    "huge-statistics, before": {"attack": "huge-statistics", **UNBOUNDED},
    "huge-statistics, after": {"attack": "huge-statistics"},
}


def attacker_share(row: dict, pid: int) -> float:
    """Return partition ``pid``'s weight in the round's average (0 if it did not take part)."""
    if pid not in row["participants"]:
        return 0.0
    return row["batch_sizes"][row["partition_ids"].index(pid)] / row["global_batch"]


def run(overrides: dict, args: argparse.Namespace, directory: Path) -> list[dict]:
    """Run one simulation in ``directory``; return its rounds."""
    attack = {"attacker": args.attacker} if overrides else {}
    config = resolve_run_config(
        {"num-server-rounds": args.rounds, "seed": args.seed, "min-nodes": args.clients,
         "results-dir": str(directory), **attack, **overrides}
    )  # fmt: skip
    run_inprocess(config, clients=args.clients)
    lines = (directory / "rounds.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--attacker", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in RUNS.items():
            rows = run(overrides, args, Path(tmp) / name.replace(", ", "-"))
            shares = [attacker_share(r, args.attacker) for r in rows]
            first = rows[0]
            batch = dict(zip(first["partition_ids"], first["batch_sizes"], strict=True))
            print(
                f"{name:26s} accuracy {rows[-1]['test_accuracy']:.4f}  attacker's weight "
                f"{sum(shares) / len(shares):.3f}  its round-1 batch {batch.get(args.attacker)}"
            )


if __name__ == "__main__":
    main()
