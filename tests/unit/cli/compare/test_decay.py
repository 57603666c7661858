"""The Eq. (8) fit: bootstrap interval, duplicates counted once, negative decays kept."""

import numpy as np
import pytest

from cli.compare.decay import (
    DecaySeries,
    bootstrap_alpha,
    decay_check,
    distinct,
    fit_power,
    verdict,
)
from cli.compare.settings import RunSpec
from cli.compare.table import RunResult

BATCHES = (4, 8, 32, 128, 256, 512)


def decay_run(batch, law, decays):
    """A decay run of ``law`` at global ``batch`` whose probe loss falls by ``decays``."""
    loss = 2.0 - np.concatenate([[0.0], np.cumsum(decays)])
    rows = [
        {"round": n, "sim_time_s": float(n), "global_batch": batch, "probe_loss": float(v)}
        for n, v in enumerate(loss[1:], 1)
    ]
    spec = RunSpec(
        4, "iid", 0, "gradient-feel-bmax", None, 32, fixed_batch=batch // 4, lr_scaling=law
    )
    return RunResult(spec, rows, {"initial_probe_loss": float(loss[0])})


def noisy(alpha, rng, rounds=20, scale=1e-3, noise=2e-3):
    """Per-round decays scale * B^alpha plus Gaussian noise, per batch of :data:`BATCHES`."""
    return {b: scale * b**alpha + noise * rng.standard_normal(rounds) for b in BATCHES}


def test_fit_recovers_a_known_exponent_exactly():
    batches = np.array(BATCHES, float)
    assert fit_power(batches, 0.01 * batches**0.5) == pytest.approx(0.5)
    assert fit_power(batches, 3e-5 * batches) == pytest.approx(1.0)


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_bootstrap_interval_covers_the_known_exponent(alpha):
    rng = np.random.default_rng(1)
    series = [DecaySeries(float(b), d) for b, d in noisy(alpha, rng).items()]
    draws = bootstrap_alpha(series)
    low, high = np.percentile(draws, [2.5, 97.5])
    assert low <= alpha <= high and high - low < 0.6


def test_identical_trajectories_count_once_and_negative_decays_are_kept():
    decays = np.array([0.02, -0.01, 0.005])
    series = [DecaySeries(64.0, decays), DecaySeries(64.0, decays.copy())]
    series.append(DecaySeries(8.0, -decays))
    kept = distinct(series)
    assert len(kept) == 2 and kept[1].decays.mean() < 0
    runs = [decay_run(64, "sqrt", decays), decay_run(64, "sqrt", decays)]
    runs.append(decay_run(8, "sqrt", -decays))
    fit = decay_check(runs)["fits"]["sqrt"]
    assert fit["duplicates"] == 1 and fit["runs"] == 3
    assert [p["mean_decay"] < 0 for p in fit["points"]] == [False, True]


def test_check_judges_sqrt_decay_under_sqrt_law_and_the_fixed_control():
    rng = np.random.default_rng(2)
    runs = [decay_run(b, "sqrt", d) for b, d in noisy(0.5, rng).items()]
    runs += [decay_run(b, "fixed", d) for b, d in noisy(0.0, rng, scale=0.02).items()]
    runs.append(RunResult(RunSpec(4, "iid", 0, "proposed"), [], {}))  # not a decay run
    check = decay_check(runs)
    assert check["holds"] is True and check["control"] == "rate"
    text = verdict(check)
    assert text.startswith("Eq. (8) holds") and "learning-rate law's first-order effect" in text


def test_a_linear_decay_does_not_hold_and_few_batches_are_not_judged():
    rng = np.random.default_rng(3)
    runs = [decay_run(b, law, d) for law in ("sqrt", "fixed") for b, d in noisy(1.0, rng).items()]
    check = decay_check(runs)
    assert check["holds"] is False and check["control"] == "neither"
    assert "does not hold" in verdict(check)
    few = decay_check(runs[:3])
    assert few["holds"] is None and verdict(few).startswith("too few")


def test_an_interval_holding_both_0_and_half_is_not_a_confirmation():
    rng = np.random.default_rng(4)
    runs = [decay_run(b, "sqrt", d) for b, d in noisy(0.25, rng, noise=3e-2).items()]
    runs += [decay_run(b, "fixed", d) for b, d in noisy(0.0, rng, scale=0.02).items()]
    check = decay_check(runs)
    low, high = check["fits"]["sqrt"]["ci"]
    assert low < 0 < 0.5 < high and check["holds"] is True
    assert verdict(check).startswith("Eq. (8) is not confirmed") and "also 0" in verdict(check)
