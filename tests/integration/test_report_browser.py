"""``feel report`` of a real ``feel compare`` output, loaded in headless Chromium.

The page must load with no console error, no uncaught exception and no failed load, every
figure must decode, and the tables must hold every run. The detector itself is checked on
pages that do fail, so that a clean result means something.
"""

import json

import pytest
from support.browser import CHROMIUM, load_page

from cli.main import main

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (.ci/run installs it)")

# What the page shows, read in the browser once it has loaded.
PROBE = """({
  images: [...document.images].map(i => ({
    alt: i.alt, data: i.src.startsWith("data:"), decoded: i.complete && i.naturalWidth > 0})),
  tables: [...document.querySelectorAll("table")].map(t =>
    [...t.rows].map(r => [...r.cells].map(c => c.textContent))),
  headings: [...document.querySelectorAll("h2")].map(h => h.id),
})"""


@pytest.fixture(scope="module")
def compare_output(tmp_path_factory):
    """Two schemes of a real three-round grid, run in process."""
    root = tmp_path_factory.mktemp("compare")
    argv = ["compare", "--schemes", "proposed,full", "--clients", "3", "--partitions", "iid",
            "--rounds", "3", "--repeats", "1", "--sweep-learning-rates", "",
            "--results-dir", str(root)]  # fmt: skip
    assert main(argv) == 0
    return root


def test_the_report_of_a_compare_output_loads_without_errors(compare_output, tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", str(compare_output), "--out", str(out)]) == 0
    runs = json.loads((compare_output / "comparison.json").read_text())["runs"]
    directories = sorted(run["directory"] for run in runs)
    assert directories == ["runs/K3-iid/seed0/full", "runs/K3-iid/seed0/proposed"]
    labels = ["full", "proposed"]  # their paths below the runs' common parent
    summaries = [json.loads((compare_output / d / "summary.json").read_text()) for d in directories]
    load = load_page(out, PROBE)
    assert load.errors == []
    page = load.probe
    assert page["headings"] == ["summary", "config", "time", "energy", "allocation"]
    assert all(image["data"] and image["decoded"] for image in page["images"]), page["images"]
    allocations = [f"allocation of {label}" for label in labels]
    assert [image["alt"] for image in page["images"]] == [
        "against simulated time", "against energy", *allocations]  # fmt: skip
    summary, differences = page["tables"]
    assert [row[0] for row in summary[1:]] == labels
    assert [row[2] for row in summary[1:]] == ["3", "3"]  # rounds
    assert [row[6] for row in summary[1:]] == [f"{s['sim_energy_j']:.4g}" for s in summaries]
    assert differences == [["Run", "scheme"], [labels[0], "full"], [labels[1], "proposed"]]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ('<script>console.error("deliberate")</script>', "console.error: deliberate"),
        ("<script>undefinedFunction()</script>", "exception: ReferenceError"),
        ('<img src="missing.png">', "log (network): Failed to load resource"),
    ],
)
def test_the_detector_catches_a_page_that_fails(body, error, tmp_path):
    page = tmp_path / "page.html"
    page.write_text(f"<!DOCTYPE html><html><body>{body}</body></html>")
    (found,) = load_page(page).errors
    assert found.startswith(error)


def test_the_detector_passes_a_page_that_only_logs(tmp_path):
    page = tmp_path / "page.html"
    page.write_text('<!DOCTYPE html><html><body><script>console.log("fine")</script></body></html>')
    assert load_page(page, "document.body.textContent").errors == []
