"""Wall time per round of `feel simulate` against a plain single-process PyTorch loop.

Usage: python scripts/bench_simulation.py [--rounds 6] [--cases cnn:6,cnn:12,resnet18:6,resnet18:12]

A case is MODEL:K, or MODEL:K:DATASET (e.g. ``cnn:100``, ``cnn:1000:synthetic-cifar``).

For each case it runs `feel simulate` (Flower's Simulation Engine, Ray backend, one CPU per
client) with `--eval-every ROUNDS`, so that the test set is evaluated only after the last
round, then replays the same rounds in one process: the same model, data partitions and
per-device batch sizes (read from the run's rounds.jsonl), the same gradient code, the
batch-weighted average (Eq. 1) and the server SGD step (Eq. 2). It reports the median wall
time per round (without round 1, which starts the Ray actors, and the last round, which
evaluates), their ratio, the peak memory of each, and what one test-set evaluation adds to
a round (timed in the plain process). Peak memory: for `feel simulate` the proportional set
size summed over its whole process tree, sampled every 0.2 s in a second run of the same
command (reading a process's smaps_rollup walks its page tables: done during the timed run,
it slowed resnet18 rounds by a fifth); for the plain loop its maximum resident set size.
cnn runs on digits by default, resnet18 on CIFAR-shaped random tensors (dataset
synthetic-cifar) with --max-batch 16 to bound the run time on 2 cores. Each case also prints
the peak that ``feel simulate`` estimates before it starts (:mod:`cli.memory`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from cli.memory import simulation_actors
from cli.preflight import preflight
from cli.process.orphans import with_descendants
from strategy.aggregation import batch_weights, scaled_learning_rate, sgd_step, weighted_average
from task.config import resolve_run_config
from task.data import load_dataset
from task.models import build_model
from task.partition import partition_indices
from task.sampling import next_batch
from task.training import compute_gradient, evaluate

DATASET = {"cnn": ("digits", 128), "resnet18": ("synthetic-cifar", 16)}
# One case: model, devices K, dataset.
Case = tuple[str, int, str]
# The phases of a round that rounds.jsonl times (wall_phases_s).
PHASES = ("query", "schedule", "train", "aggregate", "evaluate")


def _tree_pss(pid: int) -> int:
    """Proportional set size in bytes of ``pid`` and its descendants.

    PSS splits shared pages (torch's libraries, Ray's object store) between the processes
    that map them, so the sum over the tree counts each page once.
    """
    total = 0
    for p in with_descendants([pid]):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


def run_feel(case: Case, rounds: int, out: Path, sample_memory: bool) -> tuple[list[dict], int]:
    """Run `feel simulate`; return its rounds and, if sampled, the peak PSS of its process tree."""
    model, clients, dataset = case
    max_batch = DATASET[model][1]
    command = [
        sys.executable, "-m", "cli.main", "simulate", "--model", model, "--dataset", dataset,
        "--clients", str(clients), "--rounds", str(rounds), "--max-batch", str(max_batch),
        "--eval-every", str(rounds), "--results-dir", str(out),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        if sample_memory:
            peak = max(peak, _tree_pss(process.pid))
        time.sleep(0.2)
    if process.returncode != 0:
        raise SystemExit(f"feel simulate failed ({process.returncode}); see {out}")
    rows = [json.loads(line) for line in (out / "rounds.jsonl").read_text().splitlines()]
    return rows, peak


def run_plain(case: Case, rows: list[dict]) -> tuple[list[float], float]:
    """Replay the rounds in one process; return the wall time of each round and of an evaluation."""
    model, clients, dataset = case
    max_batch = DATASET[model][1]
    config = resolve_run_config({"model": model, "dataset": dataset, "max-batch": max_batch})
    data = load_dataset(dataset)
    parts = partition_indices(
        data.y_train, clients, config["partition"], config["seed"], config["dirichlet-alpha"]
    )
    net = build_model(model, data.num_classes, data.in_channels, data.image_size)
    state = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    cursors = [0] * clients
    times = []
    for row in rows:
        start = time.perf_counter()
        grads, sizes = [], []
        for k, batch_size in enumerate(row["batch_sizes"]):
            batch, cursors[k] = next_batch(len(parts[k]), batch_size, config["seed"], k, cursors[k])
            examples = parts[k][batch]
            net.load_state_dict({n: torch.from_numpy(v) for n, v in state.items()})
            g, _, _ = compute_gradient(
                net, data.x_train[examples], data.y_train[examples], torch.device("cpu")
            )
            grads.append(g)
            sizes.append(len(batch))
        weights = batch_weights(sizes)
        rate = scaled_learning_rate(config["learning-rate"], sum(sizes), config["base-batch"])
        state = sgd_step(state, weighted_average(grads, weights), rate)
        times.append(time.perf_counter() - start)
    net.load_state_dict({n: torch.from_numpy(v) for n, v in state.items()})
    start = time.perf_counter()
    evaluate(net, data.x_test, data.y_test, torch.device("cpu"))
    return times, time.perf_counter() - start


def replay(case: Case, rows_file: Path) -> None:
    """Child process: run the plain loop and print its round times and peak RSS as JSON."""
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    times, evaluation = run_plain(case, rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"times": times, "evaluation": evaluation, "peak": peak}))


def estimated_peak(case: Case) -> float:
    """Return the peak memory `feel simulate` estimates for ``case`` before it starts."""
    model, clients, dataset = case
    config = {"model": model, "dataset": dataset, "max-batch": DATASET[model][1]}
    return preflight(resolve_run_config(config), clients, simulation_actors(1)).total


def measure(case: Case, rounds: int) -> dict:
    """Run both for one case; return feel's timed rows, its peak memory and the replay's."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        rows, _ = run_feel(case, rounds, out, sample_memory=False)
        _, feel_peak = run_feel(case, rounds, Path(tmp) / "memory", sample_memory=True)
        replay_argv = [sys.executable, __file__, "--replay", *map(str, case)]
        plain = json.loads(
            subprocess.run(
                [*replay_argv, str(out / "rounds.jsonl")],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
    return {
        "rows": rows[1:-1],
        "feel_peak": feel_peak,
        "estimate": estimated_peak(case),
        **plain,
        "times": plain["times"][1:-1],
    }


def phase_medians(rows: list[dict]) -> dict[str, float]:
    """Median seconds of each phase of feel's rounds, and of the rest of the round."""
    phases = {name: statistics.median(r["wall_phases_s"][name] for r in rows) for name in PHASES}
    rest = statistics.median(
        r["round_wall_time_s"] - sum(r["wall_phases_s"].values()) for r in rows
    )
    return {**phases, "other": rest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--cases", default="cnn:6,cnn:12,resnet18:6,resnet18:12")
    parser.add_argument("--replay", nargs=4, help=argparse.SUPPRESS)  # MODEL K DATASET ROWS
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error(
            f"--rounds: must be >= 3 (first and last rounds are not timed), got {args.rounds}"
        )
    if args.replay:
        model, clients, dataset, rows = args.replay
        replay((model, int(clients), dataset), Path(rows))
        return
    print(f"# {os.cpu_count()} CPUs, torch {torch.__version__}, {args.rounds} rounds per run")
    results = {case: measure(case, args.rounds) for case in map(parse_case, args.cases.split(","))}
    print(
        "| model | K | dataset | feel simulate s/round | plain loop s/round | overhead s/round "
        "| ratio | peak memory feel (GB) | estimated (GB) | peak memory plain (GB) "
        "| test-set evaluation s |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (model, clients, dataset), result in results.items():
        feel_s = statistics.median(r["round_wall_time_s"] for r in result["rows"])
        plain_s = statistics.median(result["times"])
        print(
            f"| {model} | {clients} | {dataset} | {feel_s:.3f} | {plain_s:.3f} "
            f"| {feel_s - plain_s:.3f} | {feel_s / plain_s:.2f} "
            f"| {result['feel_peak'] / 1e9:.2f} | {result['estimate'] / 1e9:.2f} "
            f"| {result['peak'] / 1e9:.2f} | {result['evaluation']:.2f} |"
        )
    print("\nWhere a feel simulate round goes (median seconds; train = send, compute, receive):\n")
    print(f"| model | K | dataset | {' | '.join(PHASES)} | other |")
    print("|---|---:|---|" + "---:|" * (len(PHASES) + 1))
    for (model, clients, dataset), result in results.items():
        cells = " | ".join(f"{v:.3f}" for v in phase_medians(result["rows"]).values())
        print(f"| {model} | {clients} | {dataset} | {cells} |")


def parse_case(text: str) -> Case:
    """Return the case of ``MODEL:K`` (the model's default dataset) or ``MODEL:K:DATASET``."""
    model, clients, *dataset = text.split(":")
    return model, int(clients), dataset[0] if dataset else DATASET[model][0]


if __name__ == "__main__":
    main()
