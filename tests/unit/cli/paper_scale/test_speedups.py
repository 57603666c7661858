"""Proposed's speedups and their bounds, the regime map's points and the paper's claims."""

import math

import pytest

from cli.compare.settings import RunSpec
from cli.compare.table import RunResult
from cli.paper_scale.paper import CLAIMS, TABLE_II
from cli.paper_scale.report import claims
from cli.paper_scale.speedups import Speedup, regime_point, speedup

TARGET = 0.9


def result(scheme, accuracies, latency=1.0, batch=10):
    """A run whose round n ends at n * latency; None accuracies are rounds not evaluated."""
    rows = [
        {"round": n + 1, "sim_time_s": (n + 1) * latency, "test_accuracy": a,
         "global_batch": batch}
        for n, a in enumerate(accuracies)
    ]  # fmt: skip
    return RunResult(RunSpec(6, "iid", 0, scheme), rows, {"config": {"learning-rate": 0.05}})


def test_a_speedup_is_the_baseline_time_over_proposed_time():
    value = speedup(
        result("proposed", [0.5, 0.9]), result("model-feel", [0.95], latency=6.0), TARGET
    )
    assert value == Speedup(3.0, "=") and value.favours_proposed and str(value) == "3.00×"


def test_unevaluated_rounds_do_not_count_toward_the_time_to_target():
    proposed = result("proposed", [None, None, 0.92, 0.93])
    assert proposed.time_to(TARGET) == 3.0 and proposed.final_accuracy == 0.93


def test_a_run_short_of_the_target_gives_a_bound_from_its_budget():
    proposed = result("proposed", [0.5, 0.91])
    slow = result("gradient-feel", [0.6, 0.7, 0.8], latency=4.0)
    lower = speedup(proposed, slow, TARGET)
    assert lower == Speedup(6.0, ">") and lower.favours_proposed and str(lower) == "> 6.00×"
    upper = speedup(slow, proposed, TARGET)
    assert upper == Speedup(2 / 12, "<") and upper.favours_proposed is False
    neither = speedup(slow, slow, TARGET)
    assert neither.bound == "?" and neither.favours_proposed is None
    assert str(neither) == "neither reached" and math.isnan(neither.value)


def test_a_run_that_stopped_early_never_reaches_the_target():
    diverged = result("proposed", [0.5, 0.6])
    diverged.summary["stopped"] = "training diverged: the global model is not finite after round 2"
    baseline = result("model-feel", [0.5, 0.95])
    assert speedup(diverged, baseline, TARGET) == Speedup(0.0, "=")
    assert str(speedup(diverged, baseline, TARGET)) == "0× (proposed stopped early)"
    within_budget = speedup(result("proposed", [0.95]), result("model-feel", [0.5]), TARGET)
    assert within_budget == Speedup(1.0, ">")  # a baseline that used its budget bounds it
    gone = result("model-feel", [0.5])
    gone.summary["stopped"] = "stopped early: round 2: 0 usable device(s)"
    assert speedup(result("proposed", [0.95]), gone, TARGET) == Speedup(math.inf, "=")
    assert speedup(result("proposed", [0.95]), gone, TARGET).favours_proposed


def test_a_bound_that_straddles_one_leaves_the_claim_open():
    proposed = result("proposed", [0.5, 0.5, 0.5, 0.91])
    baseline = result("model-feel", [0.5, 0.6])  # budget 2 s: only a bound > 0.5
    value = speedup(proposed, baseline, TARGET)
    assert value.bound == ">" and value.value == pytest.approx(0.5)
    assert value.favours_proposed is None


def test_a_regime_point_holds_both_speedups_and_proposed_s_batch():
    runs = {
        "proposed": result("proposed", [0.95], latency=2.0, batch=300),
        "model-feel": result("model-feel", [0.95], latency=1.0),
        "gradient-feel": result("gradient-feel", [0.95], latency=8.0),
    }
    point = regime_point(runs, 0.1, 8, TARGET)
    assert point.over_model_feel == Speedup(0.5, "=") and point.over_gradient_feel.value == 4.0
    assert (point.cycles_per_flop, point.gradient_bits, point.proposed_batch) == (0.1, 8, 300)


def test_claims_compare_proposed_with_each_baseline_beside_the_paper_ratio():
    paper = TABLE_II[(6, "iid")]
    rows = [
        {"clients": 6, "partition": "iid", "scheme": scheme, "paper": paper[scheme],
         "run": result(scheme, [0.95], latency=latency)}
        for scheme, latency in (("proposed", 1.0), ("individual", 2.0), ("model-feel", 0.5),
                                ("gradient-feel", 3.0))
    ]  # fmt: skip
    found = {c["claim"]: c for c in claims(rows, (TARGET,))}
    assert set(found) == {c.key for c in CLAIMS}
    assert found["over-individual"]["ours"] == Speedup(2.0, "=")
    assert found["over-individual"]["holds"] is True
    assert found["over-model-feel"]["holds"] is False
    assert found["over-model-feel"]["paper"] == pytest.approx(1.09 / 0.29)
    assert found["over-gradient-feel"]["ours"].value == 3.0
