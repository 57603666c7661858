"""Test accuracy under the two BatchNorm-statistics rules, and with recalibrated statistics.

Usage: python scripts/bn_statistics.py [--out results/bn_statistics] [--calibration 1000]
       [--json docs/results/bn_statistics.json] [--plot docs/img/bn_recalibration.png]

A gradient scheme takes one global step per round. Run-config ``bn-statistics`` says what
the global model's BN running statistics are then (:func:`strategy.aggregation.updated_statistics`):
``global-batch`` (the default: the statistics of the round's global batch, pooled from the
devices' batch statistics) or ``momentum`` (PyTorch's exponential average, momentum 0.1,
once per round: the rule before the fix). Model-FEEL updates them at every local step. The
rule changes only the statistics eval mode uses, never the weights: training normalises
with batch statistics. It runs, in process (``cli.compare.runner.run_inprocess``, i.e.
``server.app.run`` on an ``InProcessGrid``):

- ``default``: the ``feel simulate`` defaults (digits, cnn, 6 devices, proposed, 60 rounds,
  seed 0);
- ``K6-iid``: the ``feel compare`` cell K = 6 IID, schemes proposed and model-feel, with the
  run configs and seeds ``feel compare`` uses (30 simulated s, seeds 0 and 1).

A gradient run runs once under each rule (the script checks that the training losses agree
to the last bit); model-FEEL once. Each run is the library's own run, unchanged (its
``rounds.jsonl`` is written as usual); the script only appends a round hook to the ones
``server.app.run`` passes to the strategy's ``start``. After every round the hook evaluates
the global model on the test set as it is (what ``rounds.jsonl`` reports, checked) and, in
the ``global-batch`` run, also ``recalibrated``: on a copy whose BN running statistics are
reset and re-estimated for the current weights by forward passes without gradient, BN
layers in train mode with ``momentum=None`` (a cumulative average), over a fixed
calibration set of training examples (drawn once with its own generator, so the runs'
random streams are untouched).

It writes the curves per run (JSON), the plot of accuracy against round, and prints the
figures of docs/bn_statistics.md.
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch
from flwr.app import ArrayRecord
from matplotlib.figure import Figure
from torch import nn

import server.app
from cli.compare.runner import run_config, run_inprocess
from cli.compare.settings import CompareSettings, RunSpec
from cli.simulate import CLIENTS
from strategy import FinishedRound
from strategy.schemes import MODEL_SCHEMES
from task.config import resolve_run_config
from task.data import load_dataset
from task.models import build_model
from task.training import evaluate, resolve_device

CELL = (6, "iid")
CELL_SCHEMES = ("proposed", "model-feel")
RULES = ("momentum", "global-batch")
# The accuracies reported per round: under each rule, and recalibrated.
CURVES = ("momentum", "global-batch", "recalibrated")
REPORT_ROUNDS = (5, 10, 20, 40, 60)
CALIBRATION_SEED = 12345
CALIBRATION_BATCH = 100


@torch.no_grad()
def recalibrate(model: nn.Module, x: np.ndarray, device: torch.device, batch: int) -> None:
    """Re-estimate ``model``'s BN running statistics on ``x`` (cumulative average)."""
    model.to(device).eval()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
            module.train()
    for start in range(0, len(x), batch):
        model(torch.tensor(x[start : start + batch], device=device))
    model.eval()


class BnProbe:
    """Round hook: test accuracy of the global model with current and recalibrated BN stats."""

    def __init__(
        self, config: Mapping[str, Any], calibration: int, batch: int, recalibrated: bool
    ) -> None:
        data = load_dataset(config["dataset"], config["data-dir"] or None)
        self.model = build_model(
            config["model"], data.num_classes, data.in_channels, data.image_size
        )
        self.device = resolve_device(config["device"])
        self.x_test, self.y_test = data.x_test, data.y_test
        pick = np.random.default_rng(CALIBRATION_SEED).permutation(len(data.x_train))
        self.x_calibration = data.x_train[np.sort(pick[:calibration])]
        self.batch = batch
        self.recalibrated = recalibrated
        self.rows: list[dict[str, Any]] = []

    def evaluate(self, arrays: ArrayRecord, recalibrated: bool) -> tuple[float, float]:
        """Test loss and accuracy of ``arrays``, optionally with recalibrated BN statistics."""
        model = copy.deepcopy(self.model)
        model.load_state_dict(arrays.to_torch_state_dict())
        if recalibrated:
            recalibrate(model, self.x_calibration, self.device, self.batch)
        return evaluate(model, self.x_test, self.y_test, self.device)

    def __call__(self, finished: FinishedRound) -> None:
        """Evaluate the round's global model (and recalibrated, if asked); keep the row."""
        with torch.random.fork_rng(devices=[]):
            loss, accuracy = self.evaluate(finished.arrays, recalibrated=False)
            row = {
                "round": finished.record.round,
                "sim_time_s": finished.record.sim_time_s,
                "train_loss": finished.record.train_loss,
                "accuracy": accuracy,
                "loss": loss,
            }
            if self.recalibrated:
                row["recalibrated_loss"], row["recalibrated_accuracy"] = self.evaluate(
                    finished.arrays, recalibrated=True
                )
        reported = finished.metrics["test_accuracy"] if finished.metrics is not None else None
        if reported is not None and abs(reported - accuracy) > 1e-9:
            raise RuntimeError(f"round {finished.record.round}: {accuracy} != {reported}")
        self.rows.append(row)


@contextmanager
def extra_round_hook(hook: Callable[[FinishedRound], None]) -> Any:
    """Make ``server.app.run``'s strategy call ``hook`` after its own round hooks."""
    build = server.app.build_strategy

    def build_with_hook(*args: Any, **kwargs: Any) -> Any:
        strategy = build(*args, **kwargs)
        start = strategy.start

        def start_with_hook(*s_args: Any, round_hooks: Sequence[Any] = (), **s_kwargs: Any) -> Any:
            return start(*s_args, round_hooks=(*round_hooks, hook), **s_kwargs)

        strategy.start = start_with_hook
        return strategy

    with mock.patch.object(server.app, "build_strategy", build_with_hook):
        yield


def measure(
    config: Mapping[str, Any], clients: int, calibration: int, recalibrated: bool
) -> list[dict[str, Any]]:
    """Run ``config`` in process with a :class:`BnProbe`; return its rows."""
    probe = BnProbe(config, calibration, CALIBRATION_BATCH, recalibrated)
    with extra_round_hook(probe):
        run_inprocess(config, clients)
    reported = [
        json.loads(line)["test_accuracy"]
        for line in (Path(config["results-dir"]) / "rounds.jsonl").read_text().splitlines()
    ]
    if reported != [row["accuracy"] for row in probe.rows]:
        raise RuntimeError(f"{config['results-dir']}: rounds.jsonl disagrees with the probe")
    return probe.rows


def measure_rules(config: Mapping[str, Any], clients: int, calibration: int) -> list[dict]:
    """Rows with the accuracy under each rule of :data:`RULES` and recalibrated.

    A model-based scheme has one rule of its own: its rows repeat its accuracy for both.
    """
    if config["scheme"] in MODEL_SCHEMES:
        rows = measure(config, clients, calibration, recalibrated=True)
        return [{**row, "momentum_accuracy": row["accuracy"]} | _named(row) for row in rows]
    per_rule = {}
    for rule in RULES:
        results_dir = f"{config['results-dir']}-{rule}"
        ruled = {**config, "bn-statistics": rule, "results-dir": results_dir}
        per_rule[rule] = measure(ruled, clients, calibration, rule == "global-batch")
    momentum, rows = per_rule["momentum"], per_rule["global-batch"]
    if [r["train_loss"] for r in momentum] != [r["train_loss"] for r in rows]:
        raise RuntimeError(f"{config['results-dir']}: the rules trained different weights")
    return [
        {**row, "momentum_accuracy": m["accuracy"]} | _named(row)
        for row, m in zip(rows, momentum, strict=True)
    ]


def _named(row: Mapping[str, Any]) -> dict[str, float]:
    return {"global-batch_accuracy": row["accuracy"]}


def runs(out: Path) -> list[tuple[str, dict[str, Any], int]]:
    """The measured runs: (name, run config, clients)."""
    default = resolve_run_config({"min-nodes": CLIENTS, "results-dir": str(out / "default")})
    settings = CompareSettings()
    cell = [
        (
            f"K{CELL[0]}-{CELL[1]}/seed{seed}/{scheme}",
            run_config(RunSpec(*CELL, seed, scheme), settings, out),
            CELL[0],
        )
        for seed in settings.seeds()
        for scheme in CELL_SCHEMES
    ]
    return [("default", default, CLIENTS), *cell]


def time_to(rows: Sequence[Mapping[str, Any]], key: str, target: float) -> float | None:
    """Simulated time of the first round whose ``key`` reaches ``target``."""
    return next((row["sim_time_s"] for row in rows if row[key] >= target), None)


def at_round(rows: Sequence[Mapping[str, Any]], key: str, round_: int) -> float | None:
    """``key`` at ``round_``, None if the run had fewer rounds."""
    return next((row[key] for row in rows if row["round"] == round_), None)


def plot(results: Mapping[str, Sequence[Mapping[str, Any]]], path: Path) -> None:
    """Accuracy against round per curve of :data:`CURVES`: default run and seed 0's cell."""
    names = ["default"] + [f"K{CELL[0]}-{CELL[1]}/seed0/{s}" for s in CELL_SCHEMES]
    figure = Figure(figsize=(13, 4), layout="constrained")
    axes = figure.subplots(1, len(names), sharey=True)
    labels = {
        "momentum": "momentum 0.1 (before)",
        "global-batch": "global batch (now)",
        "recalibrated": "recalibrated",
    }
    for ax, name in zip(axes, names, strict=True):
        rows = results[name]
        rounds = [row["round"] for row in rows]
        for curve in CURVES:
            ax.plot(rounds, [row[f"{curve}_accuracy"] for row in rows], label=labels[curve])
        ax.set_title(name)
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy")
    axes[0].legend(loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def report(results: Mapping[str, Sequence[Mapping[str, Any]]], target: float) -> str:
    """Markdown tables of the figures: each cell is momentum / global-batch / recalibrated."""
    lines = ["| Run | " + " | ".join(f"round {r}" for r in REPORT_ROUNDS) + " |"]
    lines.append("|---|" + "---|" * len(REPORT_ROUNDS))

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{100 * value:.1f}%"

    def sec(value: float | None) -> str:
        return "not reached" if value is None else f"{value:.2f}"

    for name, rows in results.items():
        cells = [
            " / ".join(pct(at_round(rows, f"{curve}_accuracy", r)) for curve in CURVES)
            for r in REPORT_ROUNDS
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    header = " | ".join(f"{curve} (s)" for curve in CURVES)
    lines += ["", f"| Run (time to {target:.0%}) | {header} | Rounds |", "|---|---|---|---|---|"]
    for name, rows in results.items():
        times = " | ".join(sec(time_to(rows, f"{curve}_accuracy", target)) for curve in CURVES)
        lines.append(f"| {name} | {times} | {len(rows)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/bn_statistics"))
    parser.add_argument("--calibration", type=int, default=1000, help="calibration examples")
    parser.add_argument("--json", type=Path, default=Path("docs/results/bn_statistics.json"))
    parser.add_argument("--plot", type=Path, default=Path("docs/img/bn_recalibration.png"))
    args = parser.parse_args()
    results = {}
    for name, config, clients in runs(args.out.resolve()):
        print(f"running {name}", flush=True)
        results[name] = measure_rules(config, clients, args.calibration)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    meta = {"calibration_examples": args.calibration, "calibration_batch": CALIBRATION_BATCH}
    args.json.write_text(json.dumps({**meta, "runs": results}, indent=1) + "\n")
    plot(results, args.plot)
    print(report(results, CompareSettings().target_accuracy))


if __name__ == "__main__":
    main()
