"""``paper-scale.md`` and ``.json``: Table II beside the paper's, bits, GPU, regime map."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cli.compare.plots import plot_sweep
from cli.compare.settings import PROPOSED, REFERENCE_SCHEME
from cli.compare.table import RunResult
from cli.paper_scale.paper import CLAIMS, TABLE_II
from cli.paper_scale.plan import TABLE_CYCLES_PER_FLOP, Grid, PaperScalePlan
from cli.paper_scale.speedups import RegimePoint, Speedup, plot_regime, regime_point, speedup
from server.results import evaluated_rows

JSON_FILE = "paper-scale.json"
MARKDOWN_FILE = "paper-scale.md"
REGIME_FIGURE = "regime-map.png"
SWEEP_FIGURE = "fig3-lr-sweep.png"


class Runs:
    """Every finished run of the plan's grids, found by grid, scheme and cell."""

    def __init__(self, grids: list[Grid], root: Path) -> None:
        self.by_grid = {
            grid.name: [
                RunResult.load(spec, Path(root) / grid.name) for spec in grid.settings.runs()
            ]
            for grid in grids
        }

    def find(self, grid: str, scheme: str, cell: str, rate: float | None = None) -> RunResult:
        """Return the run of ``scheme`` in ``cell`` of ``grid`` (its first rate by default)."""
        runs = [r for r in self.by_grid[grid] if r.spec.scheme == scheme and r.spec.cell == cell]
        if rate is not None:
            runs = [r for r in runs if r.summary["config"]["learning-rate"] == rate]
        return runs[0]

    def wall_time_s(self) -> float:
        """Return the runs' own wall times (``summary.json``), added up."""
        return sum(r.summary["wall_time_s"] for runs in self.by_grid.values() for r in runs)

    def count(self) -> int:
        """How many runs there are."""
        return sum(len(runs) for runs in self.by_grid.values())


def _level(target: float) -> str:
    """Return a target accuracy as a percentage, e.g. ``88%`` or ``88.5%``."""
    return f"{100 * target:.4g}%"


def _percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def _accuracy(run: RunResult) -> str:
    """Return the run's final test accuracy, or a dash if it stopped before any evaluation."""
    if not evaluated_rows(run.rows):
        return "—"
    return _percent(run.final_accuracy)


def _stop(run: RunResult) -> str:
    """Why the run stopped, in a word or two (``summary.json``'s ``stopped`` in full)."""
    stopped = run.summary.get("stopped", "")
    budget = run.summary["config"].get("time-budget-s", 0.0)
    if stopped.startswith("individual learning") and budget:  # its exchange ends it either way
        spent = float(run.rows[-1]["sim_time_s"]) >= budget
        return "budget, then its exchange" if spent else "stopping rule"
    if stopped.startswith("stopped early"):
        return f"no usable update in round {len(run.rows) + 1}"
    for start, word in (("simulated time", "budget"), ("training diverged", "diverged")):
        if stopped.startswith(start):
            return word
    return stopped or "rounds"


def _time(run: RunResult, target: float) -> str:
    time = run.time_to(target)
    return f"{time:,.0f}" if time is not None else f"not in {run.rows[-1]['sim_time_s']:,.0f}"


def table_ii(runs: Runs, plan: PaperScalePlan) -> list[dict[str, Any]]:
    """Our Table II rows beside the paper's, per cell (K, partition) and scheme."""
    rows = []
    for k in plan.clients:
        for partition in plan.partitions:
            cell = f"K{k}-{partition}"
            reference = runs.find(f"table2-K{k}", REFERENCE_SCHEME, cell)
            paper = TABLE_II.get((k, partition), {})
            for scheme in plan.table_schemes:
                run = runs.find(f"table2-K{k}", scheme, cell)
                rows.append(
                    {
                        "clients": k,
                        "partition": partition,
                        "scheme": scheme,
                        "learning_rate": run.summary["config"]["learning-rate"],
                        "final_accuracy": run.final_accuracy,
                        "time_to_target_s": {t: run.time_to(t) for t in plan.targets},
                        "speedup": {t: speedup(run, reference, t) for t in plan.targets},
                        "rounds": len(run.rows),
                        "paper": paper.get(scheme),
                        "run": run,
                    }
                )
    return rows


def _target_header(targets: tuple[float, ...], what: str) -> str:
    """Table columns: time to each target, then ``what`` at it."""
    return "".join(f" Time to {_level(t)} (simulated s) | {what} at {_level(t)} |" for t in targets)


def _target_cells(run: RunResult, versus: dict[float, Any], targets: tuple[float, ...]) -> str:
    """Table cells: the run's time to each target, then ``versus`` at it."""
    return "".join(f" {_time(run, t)} | {versus[t]} |" for t in targets)


def _table_ii_markdown(rows: list[dict[str, Any]], targets: tuple[float, ...]) -> list[str]:
    lines = []
    for cell in dict.fromkeys((r["clients"], r["partition"]) for r in rows):
        k, partition = cell
        case = "IID" if partition == "iid" else f"non-IID ({partition})"
        lines += [
            f"### K = {k}, {case}",
            "",
            "| Scheme | eta0 | Test accuracy | paper |"
            + _target_header(targets, "Training speedup")
            + " paper's speedup | Rounds | Stopped by |",
            "|---|---|---|---|" + "---|---|" * len(targets) + "---|---|---|",
        ]
        for row in rows:
            if (row["clients"], row["partition"]) != cell:
                continue
            paper = row["paper"]
            lines.append(
                f"| {row['scheme']} | {row['learning_rate']:g} | "
                f"{_accuracy(row['run'])} | {_percent(paper[0]) if paper else '—'} |"
                + _target_cells(row["run"], row["speedup"], targets)
                + f" {f'{paper[1]:g}×' if paper else '—'} | {row['rounds']} | "
                f"{_stop(row['run'])} |"
            )
        lines.append("")
    return lines


def claims(rows: list[dict[str, Any]], targets: tuple[float, ...]) -> list[dict[str, Any]]:
    """Each claim of Sec. VI-C in each cell at each target: proposed's speedup, and the paper's."""
    out = []
    for cell in dict.fromkeys((r["clients"], r["partition"]) for r in rows):
        by_scheme = {r["scheme"]: r for r in rows if (r["clients"], r["partition"]) == cell}
        proposed = by_scheme[PROPOSED]
        for claim in CLAIMS:
            baseline = by_scheme[claim.baseline]
            paper = None
            if proposed["paper"] and baseline["paper"]:
                paper = proposed["paper"][1] / baseline["paper"][1]
            for target in targets:
                ours = speedup(proposed["run"], baseline["run"], target)
                out.append(
                    {
                        "clients": cell[0],
                        "partition": cell[1],
                        "claim": claim.key,
                        "text": claim.text,
                        "target": target,
                        "ours": ours,
                        "paper": paper,
                        "holds": ours.favours_proposed,
                    }
                )
    return out


def _verdict(holds: bool | None) -> str:
    return {True: "reproduces", False: "does not reproduce", None: "open (bound)"}[holds]


def regime(runs: Runs, plan: PaperScalePlan) -> list[RegimePoint]:
    """Return the regime map's points: each cycles per FLOP and gradient bits, K first, IID."""
    first = plan.clients[0]
    points = []
    for cycles in plan.cycles_per_flop:
        table = cycles == TABLE_CYCLES_PER_FLOP
        for bits in plan.gradient_bits if table else (32, *plan.regime_gradient_bits):
            suffix = "" if bits == 32 else f"-b{bits}"
            cell = f"K{first}-iid{suffix}"
            if table:
                grid = f"table2-K{first}" if bits == 32 else "bits"
                model_feel = runs.find(f"table2-K{first}", "model-feel", f"K{first}-iid")
            else:
                tag = f"regime-cpf{cycles:g}"
                grid = f"{tag}-b32" if bits == 32 else f"{tag}-bits"
                model_feel = runs.find(f"{tag}-b32", "model-feel", f"K{first}-iid")
            found = {
                PROPOSED: runs.find(grid, PROPOSED, cell),
                "gradient-feel": runs.find(grid, "gradient-feel", cell),
                "model-feel": model_feel,
            }
            points.append(regime_point(found, cycles, bits, plan.targets[0]))
    return points


def _regime_markdown(points: list[RegimePoint]) -> list[str]:
    lines = [
        "| cycles per FLOP | gradient bits | proposed's mean global batch | over model-FEEL | "
        "over gradient-FEEL |",
        "|---|---|---|---|---|",
    ]
    for p in points:
        lines.append(
            f"| {p.cycles_per_flop:g} | {p.gradient_bits} | {p.proposed_batch:.0f} | "
            f"{p.over_model_feel} | {p.over_gradient_feel} |"
        )
    return [*lines, ""]


def _bits_markdown(runs: Runs, plan: PaperScalePlan) -> list[str]:
    first = plan.clients[0]
    base = f"K{first}-iid"
    reference = runs.find(f"table2-K{first}", REFERENCE_SCHEME, base)
    targets = plan.targets
    lines = [
        "| Scheme | gradient bits | model bits | Test accuracy |"
        + _target_header(targets, "Speedup over individual")
        + " Stopped by |",
        "|---|---|---|---|" + "---|---|" * len(targets) + "---|",
    ]
    entries = [("model-feel", 32, f"table2-K{first}")]
    for bits in plan.gradient_bits:
        grid = f"table2-K{first}" if bits == 32 else "bits"
        entries += [(PROPOSED, bits, grid), ("gradient-feel", bits, grid)]
    for scheme, bits, grid in entries:
        cell = base if bits == 32 else f"{base}-b{bits}"
        run = runs.find(grid, scheme, cell)
        config = run.summary["config"]
        versus = {t: speedup(run, reference, t) for t in targets}
        lines.append(
            f"| {scheme} | {config['gradient-bits'] if scheme != 'model-feel' else '—'} | "
            f"{config['model-bits'] if scheme == 'model-feel' else '—'} | "
            f"{_accuracy(run)} |" + _target_cells(run, versus, targets) + f" {_stop(run)} |"
        )
    return [*lines, ""]


def _gpu_markdown(runs: Runs, plan: PaperScalePlan) -> list[str]:
    cell = f"K{plan.clients[0]}-iid"
    targets = plan.targets
    proposed = runs.find("gpu", PROPOSED, cell)
    lines = [
        "| Scheme | Test accuracy | Mean global batch |"
        + _target_header(targets, "Proposed's speedup over it")
        + " Stopped by |",
        "|---|---|---|" + "---|---|" * len(targets) + "---|",
    ]
    for scheme in plan.gpu_schemes:
        run = runs.find("gpu", scheme, cell)
        batch = sum(r["global_batch"] for r in run.rows) / len(run.rows)
        versus = {t: "—" if scheme == PROPOSED else speedup(proposed, run, t) for t in targets}
        lines.append(
            f"| {scheme} | {_accuracy(run)} | {batch:.0f} |"
            + _target_cells(run, versus, targets)
            + f" {_stop(run)} |"
        )
    return [*lines, ""]


def _sweep_figure(runs: Runs, plan: PaperScalePlan, root: Path) -> Path:
    """Fig. 3: proposed at every base learning rate, K last, non-IID (or the last partition)."""
    k, partition = plan.clients[-1], plan.partitions[-1]
    cell = f"K{k}-{partition}"
    sweep = [runs.find(f"table2-K{k}", PROPOSED, cell)]
    sweep += [r for r in runs.by_grid["lr-sweep"] if r.spec.scheme == PROPOSED]
    return plot_sweep(sweep, root / SWEEP_FIGURE, f"{cell}: proposed", plan.targets[-1])


def write_report(
    plan: PaperScalePlan,
    grids: list[Grid],
    root: Path,
    command: str,
    wall_time_s: float,
    pretrained: dict[str, Any],
    runs_ran: int,
) -> dict[str, Any]:
    """Read every run, write ``paper-scale.md``, ``paper-scale.json`` and the figures."""
    root = Path(root)
    runs = Runs(grids, root)
    rows = table_ii(runs, plan)
    found = claims(rows, plan.targets)
    points = regime(runs, plan)
    plot_regime(points, root / REGIME_FIGURE)
    _sweep_figure(runs, plan, root)
    report = {
        "command": command,
        "wall_time_s": wall_time_s,
        "runs": runs.count(),
        "runs_ran": runs_ran,
        "runs_wall_time_s": runs.wall_time_s(),
        "targets": list(plan.targets),
        "examples_per_device": _examples_per_device(plan, grids),
        "pretrained": pretrained,
        "grids": {g.name: g.purpose for g in grids},
        "table_ii": [_plain(r) for r in rows],
        "claims": [_plain(c) for c in found],
        "regime": [_plain(vars(p)) for p in points],
    }
    (root / JSON_FILE).write_text(json.dumps(report, indent=2) + "\n")
    (root / MARKDOWN_FILE).write_text(_markdown(report, plan, rows, found, points, runs, grids))
    return report


def _examples_per_device(plan: PaperScalePlan, grids: list[Grid]) -> int:
    """Training examples of a device at the first K: the set less the held-out slice, over K."""
    from task.data import load_dataset

    config = grids[0].settings.run_config
    data = load_dataset(config["dataset"], config.get("data-dir") or None)
    return (len(data.y_train) - config["holdout-examples"]) // plan.clients[0]


def _plain(entry: dict[str, Any]) -> dict[str, Any]:
    """``entry`` ready for JSON: speedups as value and bound, no run objects."""

    def plain(value: Any) -> Any:
        if isinstance(value, Speedup):
            return {"value": value.value, "bound": value.bound}
        if isinstance(value, dict):
            return {f"{k:g}" if isinstance(k, float) else k: plain(v) for k, v in value.items()}
        return value

    return {key: plain(value) for key, value in entry.items() if key != "run"}


def _markdown(
    report: dict[str, Any],
    plan: PaperScalePlan,
    rows: list[dict[str, Any]],
    found: list[dict[str, Any]],
    points: list[RegimePoint],
    runs: Runs,
    grids: list[Grid],
) -> str:
    targets = " and ".join(f"{_level(t)}" for t in plan.targets)
    first = plan.clients[0]
    pre = report["pretrained"]
    lines = [
        "# The paper's comparisons at paper scale",
        "",
        f"Command: `{report['command']}`  ",
        f"Wall time of this invocation: {report['wall_time_s']:.0f} s on this machine, "
        f"{report['runs_ran']} of the {report['runs']} runs ran (the rest resumed); the runs' "
        f"own wall times add up to {report['runs_wall_time_s']:.0f} s.  ",
        f"Start: the CNN pre-trained on {pre['holdout_examples']:,} held-out training images "
        f"(test accuracy {_percent(pre['test_accuracy'])}, sha256 `{pre['sha256'][:16]}…`). "
        f"Target accuracies of the times to target and speedups: {targets}.",
        "",
        "Learning dynamics are the trained model's (the CNN on Fashion-MNIST, "
        f"{report['examples_per_device']:,} images per device at K = {first}); every latency "
        "is DenseNet121's (its parameter count and 32x32x3 training FLOPs, `system-model`). "
        "A speedup is a time to target over the proposed "
        "scheme's (Table II: individual learning's over the scheme's); `>` and `<` are bounds "
        "where one of the two did not reach the target within its budget.",
        "",
        "## Table II, beside the paper's",
        "",
        *_table_ii_markdown(rows, plan.targets),
        "## The paper's claims",
        "",
        "| K | case | claim | target | proposed's speedup, ours | paper | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in found:
        paper = f"{c['paper']:.2f}×" if c["paper"] else "—"
        lines.append(
            f"| {c['clients']} | {c['partition']} | {c['text']} | {_level(c['target'])} | "
            f"{c['ours']} | {paper} | {_verdict(c['holds'])} |"
        )
    lines += [
        "",
        f"## Gradient bits against 32-bit model parameters (K = {first}, IID)",
        "",
        *_bits_markdown(runs, plan),
        f"## Regime map (K = {first}, IID)",
        "",
        "Proposed's speedup over model-FEEL and over gradient-FEEL, against the gradient bits "
        "and the compute cost (cycles per FLOP: the compute-to-communication ratio of "
        f"DenseNet121's latencies), to {_level(plan.targets[0])}.",
        "",
        *_regime_markdown(points),
        f"![regime map]({REGIME_FIGURE})",
        "",
        f"## GPU devices (Sec. VI-D, K = {first}, IID)",
        "",
        *_gpu_markdown(runs, plan),
        "## Figures",
        "",
        f"![Fig. 3: learning-rate sweep]({SWEEP_FIGURE})",
        "",
    ]
    for k in plan.clients:
        for partition in plan.partitions:
            lines.append(
                f"![Figs. 4-5, K{k}-{partition}](table2-K{k}/schemes-K{k}-{partition}.png)"
            )
    lines += ["", "## The grids", ""]
    lines += [f"- [{g.name}]({g.name}/comparison.md): {g.purpose}" for g in grids]
    return "\n".join(lines) + "\n"
