"""The report's figures, drawn with matplotlib and returned as SVG ``data:`` URIs.

An image's SVG travels inside the page (no file, no network); each figure is its own
document, so the ids matplotlib gives its clip paths cannot clash between figures.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from cli.report.runs import ENERGY, TIME, Run

METRICS = (("test_loss", "Test loss"), ("test_accuracy", "Test accuracy"))
# Dashes of the curves, one per ten runs (matplotlib's ten colours each).
DASHES = ("-", "--", ":", "-.")
AXIS_LABELS = {TIME: "Simulated training time (s)", ENERGY: "Simulated energy (J)"}
# Heat maps of the allocation: the row's per-device list, its title and its unit scale.
ALLOCATION = (
    ("batch_sizes", "Batch size B_k", 1.0),
    ("uplink_slots_s", "Uplink slot (ms)", 1e3),
    ("downlink_slots_s", "Downlink slot (ms)", 1e3),
)
# A heat map drawn for the runs that record it: each device's energy in the round.
DEVICE_ENERGY = ("device_energy_j", "Device energy (J)", 1.0)


def data_uri(figure: Figure) -> str:
    """Return ``figure`` as a base64 ``data:image/svg+xml`` URI, the same bytes each time.

    The SVG is undated and its ids are hashed with a fixed salt (matplotlib's default is random).
    """
    buffer = io.BytesIO()
    with rc_context({"svg.hashsalt": "feel report"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def plain(text: str) -> str:
    """Return ``text`` as matplotlib shows it verbatim: no mathtext, no legend-hiding ``_``."""
    text = text.replace("$", r"\$")
    return " " + text if text.startswith("_") else text


def curves(runs: Sequence[Run], axis: str) -> Figure:
    """Test loss and accuracy against ``axis`` (time or energy), one line per run recording it.

    The global model changes at the end of each round, so the curves are steps. A run's
    line looks the same in every figure: its colour and dash follow its place in ``runs``.
    """
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    for ax, (key, ylabel) in zip(figure.subplots(1, 2), METRICS, strict=True):
        for i, run in enumerate(runs):
            if not run.has(axis):
                continue
            xs, ys = run.curve(key, axis)
            ax.plot(xs, ys, label=plain(run.label), drawstyle="steps-post", marker=".", ms=4,
                    color=f"C{i % 10}", linestyle=DASHES[i // 10 % len(DASHES)])  # fmt: skip
        ax.set_xlabel(AXIS_LABELS[axis])
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()  # the same runs in both panels
    figure.legend(
        handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize=8
    )
    return figure


def _index_ticks(axis: object, labels: Sequence[int]) -> None:
    """Label a heat map's axis of cell indices with ``labels`` (rounds or partition ids)."""
    axis.set_major_locator(MaxNLocator(nbins=10, integer=True))
    axis.set_major_formatter(
        FuncFormatter(lambda i, _: str(labels[int(i)]) if 0 <= i < len(labels) else "")
    )


def allocation(run: Run) -> Figure:
    """Heat maps of the run's batches, uplink and downlink slots (and energy): devices by rounds.

    Rows are the devices (partition ids) scheduled in any round, columns the rounds; a
    device not scheduled in a round is left blank.
    """
    maps = (*ALLOCATION, DEVICE_ENERGY) if run.has(DEVICE_ENERGY[0]) else ALLOCATION
    devices = sorted({pid for row in run.rows for pid in row["partition_ids"]})
    where = {pid: i for i, pid in enumerate(devices)}
    figure = Figure(figsize=(12, max(2.6, 1.2 + 0.22 * len(devices))), layout="constrained")
    for ax, (key, title, scale) in zip(figure.subplots(1, len(maps)), maps, strict=True):
        cells = [[math.nan] * len(run.rows) for _ in devices]
        for j, row in enumerate(run.rows):
            for pid, value in zip(row["partition_ids"], row[key], strict=True):
                cells[where[pid]][j] = value * scale
        image = ax.imshow(cells, aspect="auto", interpolation="nearest", cmap="viridis")
        figure.colorbar(image, ax=ax)
        _index_ticks(ax.xaxis, [row["round"] for row in run.rows])
        _index_ticks(ax.yaxis, devices)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("Round")
    figure.axes[0].set_ylabel("Device (partition id)")
    figure.suptitle(plain(run.label), fontsize=11)
    return figure
