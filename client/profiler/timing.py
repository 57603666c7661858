"""Wall-clock timing of one training step and one model update per batch size.

A training step is forward + cross-entropy + backward (the local gradient calculation,
Eq. (9) / Eq. (27)); a model update is one SGD step (Eq. (10) / Eq. (28)). Each batch size
gets ``warmup`` untimed runs, then ``repeats`` timed runs whose median is reported. On cuda
the device is synchronised before and after each timed call.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - torch convention


@dataclass(frozen=True)
class Timings:
    """Median latencies per batch size.

    Attributes
    ----------
    batches
        Batch sizes, ascending.
    step_s
        Median seconds of one training step (forward + backward) at each batch size.
    update_s
        Median seconds of one model update (SGD step) at each batch size.
    repeats, warmup
        Timed and untimed runs per batch size.
    threads
        Intra-op CPU threads used while timing.
    """

    batches: np.ndarray
    step_s: np.ndarray
    update_s: np.ndarray
    repeats: int
    warmup: int
    threads: int


def default_batches(max_batch: int) -> list[int]:
    """Powers of two and the points ``3 * 2**k`` between them, up to ``max_batch`` inclusive.

    The ratio of about 1.5 between neighbours resolves the breakpoint of Eq. (27).
    """
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1, got {max_batch}")
    powers = [2**k for k in range(max_batch.bit_length())]
    between = [3 * p // 2 for p in powers[1:]]
    return sorted({b for b in [*powers, *between] if b <= max_batch} | {max_batch})


def default_input_shape(model_name: str) -> tuple[int, int, int]:
    """Input ``(channels, height, width)``: digits (1, 8, 8) for ``cnn``, CIFAR (3, 32, 32) else."""
    return (1, 8, 8) if model_name == "cnn" else (3, 32, 32)


def device_name(device: torch.device) -> str:
    """Name the hardware: the accelerator on cuda, the CPU model (or architecture) on cpu."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def time_model(
    model: torch.nn.Module,
    input_shape: Sequence[int],
    num_classes: int,
    batches: Sequence[int],
    device: torch.device,
    repeats: int,
    warmup: int,
    threads: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Timings:
    """Time a training step and a model update of ``model`` at each batch size.

    Parameters
    ----------
    model
        The network; moved to ``device`` and put in training mode.
    input_shape
        One sample's shape ``(channels, height, width)``.
    num_classes
        Number of labels drawn for the cross-entropy loss.
    batches
        Batch sizes to time, timed in ascending order.
    device
        ``cpu`` or ``cuda``.
    repeats, warmup
        Timed and untimed runs per batch size.
    threads
        Intra-op CPU threads while timing (torch's setting is restored afterwards); ``None``
        keeps the current setting.
    on_batch
        Called with each batch size once it is timed (progress reporting).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    previous_threads = torch.get_num_threads()
    used = threads or previous_threads
    torch.set_num_threads(used)
    try:
        step_s, update_s = _time_batches(
            model, input_shape, num_classes, batches, device, repeats, warmup, on_batch
        )
    finally:
        torch.set_num_threads(previous_threads)
    return Timings(
        np.array(sorted(batches)), np.array(step_s), np.array(update_s), repeats, warmup, used
    )


def _time_batches(
    model: torch.nn.Module,
    input_shape: Sequence[int],
    num_classes: int,
    batches: Sequence[int],
    device: torch.device,
    repeats: int,
    warmup: int,
    on_batch: Callable[[int], None] | None,
) -> tuple[list[float], list[float]]:
    """Median step and update seconds per batch size, in ascending batch order."""
    model.to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    step_s, update_s = [], []
    for batch in sorted(batches):
        x = torch.randn((batch, *input_shape), generator=generator).to(device)
        y = torch.randint(num_classes, (batch,), generator=generator).to(device)

        def step(x: torch.Tensor = x, y: torch.Tensor = y) -> None:
            F.cross_entropy(model(x), y).backward()

        steps, updates = [], []
        for run in range(warmup + repeats):
            optimizer.zero_grad(set_to_none=True)
            step_time, update_time = _timed(step, device), _timed(optimizer.step, device)
            if run >= warmup:
                steps.append(step_time)
                updates.append(update_time)
        step_s.append(float(np.median(steps)))
        update_s.append(float(np.median(updates)))
        if on_batch is not None:
            on_batch(batch)
    return step_s, update_s


def _timed(call: Callable[[], object], device: torch.device) -> float:
    """Seconds one call takes, with the device synchronised around it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    call()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start
