"""``feel compare`` in process: finished runs are not redone, a changed config is."""

import json

from cli.compare.runner import is_complete
from cli.main import main
from server.results import WALL_KEYS


def grid(tmp_path, *extra):
    argv = ["compare", "--schemes", "full", "--clients", "2", "--partitions", "iid",
            "--rounds", "2", "--repeats", "1", "--sweep-learning-rates", "",
            "--results-dir", str(tmp_path), *extra]  # fmt: skip
    assert main(argv) == 0
    return json.loads((tmp_path / "comparison.json").read_text())


def test_finished_runs_are_not_redone_and_a_changed_config_is(tmp_path):
    first = grid(tmp_path)
    (run,) = first["runs"]
    assert run["status"] == "ran" and run["rounds"] == 2
    directory = tmp_path / run["directory"]
    rows = directory / "rounds.jsonl"
    stamp = rows.stat().st_mtime_ns
    assert grid(tmp_path)["runs"][0]["status"] == "resumed"
    assert rows.stat().st_mtime_ns == stamp
    summary = json.loads((directory / "summary.json").read_text())
    assert is_complete(directory, summary["config"])
    assert not is_complete(directory, {**summary["config"], "seed": 1})
    rows.write_text(rows.read_text().splitlines()[0] + "\n")  # a run cut short
    assert not is_complete(directory, summary["config"])
    rerun = grid(tmp_path, "--set", "learning-rate=0.1")
    assert rerun["runs"][0]["status"] == "ran"
    assert "--set learning-rate=0.1" in rerun["command"]
    assert (tmp_path / "comparison.md").read_text().count("| full |") == 1


def test_runs_in_parallel_jobs_give_the_rounds_of_one_job(tmp_path):
    wall = (*WALL_KEYS, "results-dir")

    def rounds(directory, *extra):
        argv = ["compare", "--schemes", "proposed,full", "--clients", "2", "--partitions",
                "iid", "--rounds", "3", "--repeats", "2", "--sweep-learning-rates", "",
                "--results-dir", str(directory), *extra]  # fmt: skip
        assert main(argv) == 0
        report = json.loads((directory / "comparison.json").read_text())
        assert {run["status"] for run in report["runs"]} == {"ran"}
        return {
            run["directory"]: [
                {k: v for k, v in json.loads(line).items() if k not in wall}
                for line in (directory / run["directory"] / "rounds.jsonl").read_text().splitlines()
            ]
            for run in report["runs"]
        }

    one, two = rounds(tmp_path / "one"), rounds(tmp_path / "two", "--jobs", "2")
    assert one == two and len(one) == 4
