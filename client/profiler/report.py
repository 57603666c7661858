"""The profile report: measurements and fitted device fields as JSON, and the Fig. 2(b) plot.

The report's ``gpu_profile`` and ``cpu_profile`` hold exactly the scheduler's GPU and CPU
device fields, so a fleet file can be assembled from measured profiles.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from client.profiler.fit import GpuFit, fit_cpu, fit_gpu
from client.profiler.timing import Timings


def build_report(
    *,
    model_name: str,
    input_shape: Sequence[int],
    device: str,
    device_name: str,
    timings: Timings,
    cpu_hz: float,
    training_flops_per_sample: float,
    update_flops: float,
) -> dict[str, Any]:
    """Fit the measured training-step curve and assemble the JSON-ready profile.

    Parameters
    ----------
    model_name, input_shape
        The profiled network and one sample's ``(channels, height, width)``.
    device, device_name
        ``cpu`` or ``cuda``, and the hardware's name.
    timings
        Median step and update latencies per batch size.
    cpu_hz
        Clock the CPU cycle counts of Eq. (9) and Eq. (10) are taken at.
    training_flops_per_sample, update_flops
        Forward + backward FLOPs of one sample, and FLOPs of one model update.

    Returns
    -------
    dict
        ``measurements``; ``gpu_fit`` (Eq. (27)) and ``cpu_fit`` (Eq. (9)) with their errors;
        ``gpu_profile`` (``latency_floor_s``, ``latency_slope_s``, ``batch_threshold``,
        ``update_s`` of Eq. (28)) and ``cpu_profile`` (``cpu_hz``, ``cycles_per_sample``,
        ``update_cycles`` of Eq. (10)); ``flops``; and the environment.
    """
    gpu = fit_gpu(timings.batches, timings.step_s)
    cpu = fit_cpu(timings.batches, timings.step_s, cpu_hz)
    update_s = float(np.median(timings.update_s))
    return {
        "model": model_name,
        "input_shape": [int(n) for n in input_shape],
        "device": device,
        "device_name": device_name,
        "torch_version": torch.__version__,
        "repeats": timings.repeats,
        "warmup": timings.warmup,
        "threads": timings.threads,
        "measurements": [
            {"batch": int(b), "step_s": float(s), "update_s": float(u)}
            for b, s, u in zip(timings.batches, timings.step_s, timings.update_s, strict=True)
        ],
        "gpu_fit": gpu.to_dict(),
        "cpu_fit": cpu.to_dict(),
        "gpu_profile": {
            "latency_floor_s": gpu.latency_floor_s,
            "latency_slope_s": gpu.latency_slope_s,
            "batch_threshold": gpu.batch_threshold,
            "update_s": update_s,
        },
        "cpu_profile": {
            "cpu_hz": cpu.cpu_hz,
            "cycles_per_sample": cpu.cycles_per_sample,
            "update_cycles": update_s * cpu_hz,
        },
        "flops": {
            "training_per_sample": float(training_flops_per_sample),
            "update": float(update_flops),
            "cycles_per_flop": cpu.cycles_per_sample / training_flops_per_sample,
        },
    }


def write_json(report: dict[str, Any], path: str | Path) -> None:
    """Write ``report`` as indented JSON, creating parent folders."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2) + "\n")


def plot_profiles(reports: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Plot measured step latency and the fitted Eq. (27) curve per report, as in Fig. 2(b).

    Parameters
    ----------
    reports
        Reports from :func:`build_report` (or their JSON), one curve each.
    path
        Image file to write (format from the suffix), parent folders created.
    """
    figure = Figure(figsize=(6.4, 4.4), layout="constrained")
    axes = figure.add_subplot()
    for index, report in enumerate(reports):
        color = f"C{index}"
        batches = np.array([m["batch"] for m in report["measurements"]])
        step_ms = 1e3 * np.array([m["step_s"] for m in report["measurements"]])
        fit = GpuFit(**report["gpu_fit"])
        dense = np.linspace(batches.min(), batches.max(), 400)
        label = (
            f"{report['model']}: B_th = {fit.batch_threshold:.1f}, error {fit.relative_error:.1%}"
        )
        axes.plot(batches, step_ms, "o", color=color, label=f"{report['model']} measured")
        axes.plot(dense, 1e3 * fit.predict(dense), "-", color=color, label=label)
        axes.axvline(fit.batch_threshold, color=color, linestyle=":", linewidth=1)
    names = sorted({f"{r['device_name']} ({r['device']})" for r in reports})
    axes.set_title(f"Gradient latency vs batch size, Eq. (27) fit\n{', '.join(names)}")
    axes.set_xlabel("training batch size B")
    axes.set_ylabel("latency of one training step (ms)")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure).print_figure(target, dpi=120)
