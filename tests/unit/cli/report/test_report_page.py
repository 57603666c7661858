"""``feel report`` without a browser: finding runs, labels, config differences, escaping,
the energy figures' fallback and the allocation heat maps."""

import math
import re

import pytest

from cli.main import main
from cli.report import figures
from cli.report.page import build, config_differences
from cli.report.runs import ENERGY, TIME, load_runs
from server.results import ResultsWriter, summarize

INITIAL = {"test_loss": 2.3, "test_accuracy": 0.1}


def row(n, pids=(0, 1, 2), energy=True):
    return {
        "round": n,
        "sim_time_s": 0.5 * n,
        "partition_ids": list(pids),
        "batch_sizes": [10 * (p + 1) for p in pids],
        "uplink_slots_s": [0.001 * (p + 1) for p in pids],
        "downlink_slots_s": [0.002 for _ in pids],
        "test_loss": 2.3 - 0.1 * n,
        "test_accuracy": 0.1 + 0.1 * n,
        "round_wall_time_s": 0.1,
        **({ENERGY: 3.0 * n, "device_energy_j": [1.0 for _ in pids]} if energy else {}),
    }


def write_run(directory, rows, **config):
    """Write a run with the project's writers; rows without energy make a run of before it."""
    writer = ResultsWriter(directory)
    for r in rows:
        writer.append_round(r)
    config = {"scheme": "proposed", "seed": 0, "results-dir": str(directory), **config}
    old = not all(ENERGY in r for r in rows)
    counted = [{"device_energy_j": [0.0 for _ in r["partition_ids"]], **r} for r in rows]
    summary = summarize(config, counted, INITIAL, wall_time_s=1.0, model={}, stopped="done")
    writer.write_summary(
        {k: v for k, v in summary.items() if not (old and k in (ENERGY, "device_energy_j"))}
    )
    return directory


def test_a_compare_output_gives_its_runs_labelled_below_their_common_parent(tmp_path):
    write_run(tmp_path / "runs" / "K3-iid" / "seed0" / "proposed", [row(1)])
    write_run(tmp_path / "runs" / "K3-iid" / "seed0" / "full", [row(1)], scheme="full")
    (tmp_path / "runs" / "unfinished").mkdir()
    (tmp_path / "runs" / "unfinished" / "rounds.jsonl").write_text("")
    runs = load_runs([tmp_path])
    assert [r.label for r in runs] == ["full", "proposed"]
    assert [r.config["scheme"] for r in runs] == ["full", "proposed"]
    again = load_runs([tmp_path, tmp_path / "runs" / "K3-iid" / "seed0" / "full"])
    assert len(again) == 2  # a run found twice is read once


def test_run_dirs_given_directly_are_labelled_by_their_names(tmp_path):
    a = write_run(tmp_path / "results" / "a", [row(1)])
    b = write_run(tmp_path / "other" / "b", [row(1)])
    assert [r.label for r in load_runs([a])] == ["a"]
    assert [r.label for r in load_runs([a, b])] == ["results/a", "other/b"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "RUN_DIR: {p}: no such directory"),
        (lambda p: p.mkdir(), "RUN_DIR: {p}: no run here or below"),
        (lambda p: write_run(p, [row(1)]).joinpath("summary.json").write_text("{"),
         "RUN_DIR: {p}: unreadable results file"),
    ],
)  # fmt: skip
def test_a_dir_without_runs_is_one_line_with_exit_code_2(setup, message, tmp_path, capsys):
    path = tmp_path / "run"
    setup(path)
    out = tmp_path / "report.html"
    assert main(["report", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("feel report: error: " + message.format(p=path))
    assert not out.exists()


def test_an_unwritable_out_is_a_usage_error(tmp_path, capsys):
    run = write_run(tmp_path / "a", [row(1)])
    (tmp_path / "file").write_text("")
    assert main(["report", str(run), "--out", str(tmp_path / "file" / "r.html")]) == 2
    assert capsys.readouterr().err.startswith("feel report: error: --out: cannot write")


def test_the_folder_of_out_is_created(tmp_path):
    run = write_run(tmp_path / "a", [row(1)])
    assert main(["report", str(run), "--out", str(tmp_path / "new" / "r.html")]) == 0
    assert (tmp_path / "new" / "r.html").read_text().startswith("<!DOCTYPE html>")


def test_the_report_is_written_where_out_says(tmp_path, capsys, monkeypatch):
    run = write_run(tmp_path / "a", [row(1), row(2)])
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(run)]) == 0
    assert "report of 1 run: report.html" in capsys.readouterr().out
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "No differences: only one run." in page


def test_config_differences_are_the_differing_keys_but_results_dir(tmp_path):
    runs = load_runs([
        write_run(tmp_path / "a", [row(1)], **{"learning-rate": 0.05}),
        write_run(tmp_path / "b", [row(1)], scheme="full", **{"learning-rate": 0.05}),
        write_run(tmp_path / "c", [row(1)], seed=1),
    ])  # fmt: skip
    assert config_differences(runs) == ["learning-rate", "scheme", "seed"]


def test_every_text_is_escaped(tmp_path):
    runs = load_runs([
        write_run(tmp_path / "<script>x</script>", [row(1)], scheme="<i>it</i>"),
        write_run(tmp_path / "plain", [row(1)]),
    ])  # fmt: skip
    page = build(runs)
    assert "<script" not in page and "<i>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "&lt;i&gt;it&lt;/i&gt;" in page


def images(page):
    return re.findall(r'<img src="data:image/svg\+xml;base64,[A-Za-z0-9+/=]+" alt="([^"]*)">', page)


def test_energy_figures_only_for_runs_that_record_energy(tmp_path):
    with_energy = write_run(tmp_path / "new", [row(1), row(2)])
    without = write_run(tmp_path / "old", [row(1, energy=False), row(2, energy=False)])
    both = build(load_runs([with_energy, without]))
    assert images(both) == ["against simulated time", "against energy",
                            "allocation of new", "allocation of old"]  # fmt: skip
    assert re.search(r"No energy recorded .*left out: old\.", both)
    assert "against energy" not in images(build(load_runs([without])))
    assert "No energy recorded" not in build(load_runs([with_energy]))
    old_first = load_runs([without, with_energy])
    (line,) = figures.curves(old_first, ENERGY).axes[0].lines  # in the colour it has elsewhere
    assert line.get_label() == "new" and line.get_color() == "C1"
    assert [ln.get_color() for ln in figures.curves(old_first, TIME).axes[0].lines] == ["C0", "C1"]


def test_curves_start_at_the_initial_model_at_zero(tmp_path):
    (run,) = load_runs([write_run(tmp_path / "a", [row(1), {**row(2), "test_loss": None}])])
    times, losses = run.curve("test_loss", TIME)
    assert times == [0.0, 0.5] and losses == pytest.approx([2.3, 2.2])
    energies, accuracies = run.curve("test_accuracy", ENERGY)
    assert energies == [0.0, 3.0, 6.0] and accuracies == pytest.approx([0.1, 0.2, 0.3])


def test_heat_maps_are_devices_by_rounds_blank_where_not_scheduled(tmp_path):
    rows = [row(1, pids=(0, 1, 2)), row(2, pids=(0, 2))]
    (run,) = load_runs([write_run(tmp_path / "a", rows)])
    maps = [ax.images[0].get_array() for ax in figures.allocation(run).axes if ax.images]
    batches, uplink, downlink, energy = maps
    assert batches.shape == (3, 2)  # devices 0, 1, 2 by rounds 1, 2
    assert batches[0].tolist() == [10, 10] and batches[2].tolist() == [30, 30]
    assert batches[1, 0] == 20 and math.isnan(batches.filled(math.nan)[1, 1])
    assert uplink[2].tolist() == pytest.approx([3.0, 3.0])  # milliseconds
    assert downlink[0, 0] == pytest.approx(2.0) and energy[1, 0] == 1.0


def test_the_same_runs_give_the_same_page(tmp_path):
    runs = load_runs([write_run(tmp_path / "a", [row(1), row(2)])])
    assert build(runs) == build(runs)
