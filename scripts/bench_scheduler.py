"""Time the optimal policy on seeded instances with K = 10 ... 100,000 devices.

Usage: python scripts/bench_scheduler.py [--sizes 10,1000,10000,100000] [--repeats 5]

Prints a Markdown table: median wall time of the relaxed solve and of the whole integer
answer, the gap to the relaxed optimum, and the share of devices strictly inside the batch
bounds (so the instances have an interior optimum).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from functools import partial

import numpy as np

from scheduler import get_policy, solve_relaxed
from scheduler.instances import random_instance


def median_seconds(fn, repeats: int) -> tuple[float, object]:
    """Median wall time of ``fn()`` over ``repeats`` runs, and its last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,1000,10000,100000")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(k) for k in args.sizes.split(",")]
    policy = get_policy("optimal")
    machine = platform.processor() or platform.machine()
    print(f"# scheduler benchmark on {machine}, median of {args.repeats}")
    print(
        "| scenario | K | relaxed (s) | integer answer (s) | time / K (us) "
        "| gap to relaxed | interior devices |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for scenario in ("cpu", "gpu"):
        for k in sizes:
            instance = random_instance(k, scenario, seed=1)
            relaxed_s, _ = median_seconds(partial(solve_relaxed, instance), args.repeats)
            total_s, allocation = median_seconds(partial(policy.allocate, instance), args.repeats)
            b = allocation.batch_sizes
            interior = float(np.mean((b > instance.min_batch) & (b < instance.max_batch)))
            print(
                f"| {scenario} | {k:,} | {relaxed_s:.4f} | {total_s:.4f} | {1e6 * total_s / k:.1f} "
                f"| {allocation.gap:.1e} | {interior:.0%} |"
            )


if __name__ == "__main__":
    main()
