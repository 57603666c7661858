"""``feel profile``: time a model's training step per batch size and fit Eq. (27) and Eq. (9)."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.errors import UsageError
from scheduler.instances import CPU_HZ_TIERS

if TYPE_CHECKING:
    import torch

Number = TypeVar("Number", int, float)

NUM_CLASSES = 10
REPEATS = 10
WARMUP = 3
CPU_HZ = CPU_HZ_TIERS[-1]  # the fastest device clock of the paper's Sec. VI-B


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``profile`` subcommand."""
    parser = subparsers.add_parser(
        "profile",
        help="measure training latency per batch size and fit the GPU/CPU compute models",
        description=__doc__,
    )
    parser.add_argument(
        "--model", required=True, help="model to profile, e.g. cnn or resnet18 (see task.models)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument(
        "--max-batch", type=int, default=128, help="largest batch of the default grid (128)"
    )
    parser.add_argument(
        "--batches",
        help="comma-separated batch sizes, replacing the default grid 1,2,3,4,6,8,...,max-batch",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=REPEATS,
        help=f"timed runs per batch, median reported ({REPEATS})",
    )
    parser.add_argument(
        "--warmup", type=int, default=WARMUP, help=f"untimed runs per batch first ({WARMUP})"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads while timing (1: the serial CPU of Eq. (9), steady on a busy host)",
    )
    parser.add_argument(
        "--cpu-hz",
        type=float,
        default=CPU_HZ,
        help=f"clock of the measured CPU, for cycles_per_sample and update_cycles ({CPU_HZ:g})",
    )
    parser.add_argument("--in-channels", type=int, help="input channels (cnn 1, others 3)")
    parser.add_argument("--image-size", type=int, help="input height and width (cnn 8, others 32)")
    parser.add_argument("--out", default="profile.json", help="JSON report (profile.json)")
    parser.add_argument("--plot", help="also plot measurements and fit, as in Fig. 2(b)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Profile the model, write the JSON report (and plot), print the fitted profile."""
    from client.profiler.report import plot_profiles, write_json  # torch and matplotlib: lazy

    report = profile(args)
    write_json(report, args.out)
    if args.plot:
        plot_profiles([report], args.plot)
    _print_summary(report, args.out, args.plot)
    return 0


def profile(args: argparse.Namespace) -> dict[str, Any]:
    """Check the options, time the model with a progress bar and return the fitted report."""
    from client.profiler.report import build_report
    from client.profiler.timing import device_name, time_model
    from task.flops import training_flops_per_sample, update_flops
    from task.models import build_model

    input_shape = _input_shape(args)
    device = _device(args.device)
    batches = _batches(args.batches, args.max_batch)
    for option, value in (("--repeats", args.repeats), ("--threads", args.threads)):
        _require_positive(option, value)
    _require_positive("--cpu-hz", args.cpu_hz)
    if args.warmup < 0:
        raise UsageError("--warmup", f"must be zero or more, got {args.warmup}")
    channels, size, _ = input_shape

    model = build_model(args.model, num_classes=NUM_CLASSES, in_channels=channels, image_size=size)
    name = device_name(device)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=Console(stderr=True)) as progress:
        bar = progress.add_task(f"{args.model} on {name}", total=len(batches))
        timings = time_model(
            model,
            input_shape,
            NUM_CLASSES,
            batches,
            device,
            repeats=args.repeats,
            warmup=args.warmup,
            threads=args.threads,
            on_batch=lambda _: progress.advance(bar),
        )
    return build_report(
        model_name=args.model,
        input_shape=input_shape,
        device=device.type,
        device_name=name,
        timings=timings,
        cpu_hz=args.cpu_hz,
        training_flops_per_sample=training_flops_per_sample(model, input_shape),
        update_flops=update_flops(model),
    )


def _input_shape(args: argparse.Namespace) -> tuple[int, int, int]:
    """Check ``--model`` and return its input shape, with ``--in-channels``/``--image-size``."""
    from client.profiler.timing import default_input_shape
    from task.names import MODEL_NAMES

    if args.model not in MODEL_NAMES:
        raise UsageError(
            "--model", f"unknown model {args.model!r}; choose from {', '.join(MODEL_NAMES)}"
        )
    channels, size, _ = default_input_shape(args.model)
    if args.in_channels is not None:
        channels = _require_positive("--in-channels", args.in_channels)
    if args.image_size is not None:
        size = _require_positive("--image-size", args.image_size)
    return channels, size, size


def _device(text: str) -> torch.device:
    """Parse ``--device``; cuda must be available."""
    import torch

    if text not in ("cpu", "cuda"):
        raise UsageError("--device", f"expected cpu or cuda, got {text!r}")
    if text == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device", "'cuda' requested but no CUDA device is available")
    return torch.device(text)


def _batches(text: str | None, max_batch: int) -> list[int]:
    """Parse ``--batches``, or the default grid up to ``--max-batch``."""
    from client.profiler.timing import default_batches

    _require_positive("--max-batch", max_batch)
    if text is None:
        return default_batches(max_batch)
    try:
        batches = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise UsageError("--batches", f"expected comma-separated integers, got {text!r}") from None
    if batches[0] < 1:
        raise UsageError("--batches", f"batch sizes must be at least 1, got {text!r}")
    return batches


def _require_positive(option: str, value: Number) -> Number:
    """Return ``value`` if it is a finite positive number, else raise a usage error."""
    if not (math.isfinite(value) and value > 0):
        raise UsageError(option, f"must be positive, got {value}")
    return value


def _print_summary(report: dict[str, Any], out: str, plot: str | None) -> None:
    """Print the fitted profiles and where they were written."""
    gpu, cpu = report["gpu_fit"], report["cpu_fit"]
    update = report["gpu_profile"]["update_s"]
    print(
        f"{report['model']} on {report['device_name']} ({report['device']}), "
        f"{len(report['measurements'])} batch sizes x {report['repeats']} repeats"
    )
    print(
        f"Eq. (27): latency_floor_s={gpu['latency_floor_s']:.4g} "
        f"latency_slope_s={gpu['latency_slope_s']:.4g} "
        f"batch_threshold={gpu['batch_threshold']:.4g} update_s={update:.4g} "
        f"(rmse {gpu['rmse_s']:.3g} s, {gpu['relative_error']:.1%})"
    )
    print(
        f"Eq. (9) at {cpu['cpu_hz']:.4g} Hz: cycles_per_sample={cpu['cycles_per_sample']:.4g} "
        f"update_cycles={report['cpu_profile']['update_cycles']:.4g} "
        f"(rmse {cpu['rmse_s']:.3g} s, {cpu['relative_error']:.1%})"
    )
    print(f"training FLOPs per sample {report['flops']['training_per_sample']:.4g}")
    print("wrote " + ", ".join(p for p in (out, plot) if p))
