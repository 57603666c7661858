"""TensorBoard logs of a run: each round's scalars and histograms on the simulated clock.

The step of every event is the simulated time in milliseconds (``sim_time_s`` x 1000,
rounded), so runs of different round latencies line up on one time axis, as in the
paper's Figs. 3-5; the initial model's metrics are at step 0. ``torch.utils.tensorboard``
is imported only here, when a run asks for logs (run-config ``tensorboard``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from strategy import FinishedRound, RoundRecord
from task.errors import ConfigError

if TYPE_CHECKING:
    from server.checkpoint import Checkpoint
    from server.rounds import TestSetEvaluation

# Tags of the test-set evaluation's metrics (server.evaluation.Evaluator.metrics).
METRIC_TAGS = {
    "test_loss": "test/loss",
    "test_accuracy": "test/accuracy",
    "probe_loss": "train/probe_loss",
}
# Tags of the scalar fields of a RoundRecord.
RECORD_TAGS = {
    "train_loss": "train/loss",
    "learning_rate": "train/learning_rate",
    "round_latency_s": "latency/round_s",
    "compute_latency_s": "latency/compute_s",
    "uplink_latency_s": "latency/uplink_s",
    "downlink_latency_s": "latency/downlink_s",
    "global_batch": "schedule/global_batch",
    "efficiency": "schedule/efficiency",
    "energy_j": "energy/round_j",
    "compute_energy_j": "energy/compute_j",
    "upload_energy_j": "energy/upload_j",
    "idle_energy_j": "energy/idle_j",
    "sim_energy_j": "energy/total_j",
}
# Tags of the per-device lists of a RoundRecord (scheduled devices), shown as histograms.
HISTOGRAM_TAGS = {
    "batch_sizes": "devices/batch_size",
    "uplink_slots_s": "devices/uplink_slot_s",
    "downlink_slots_s": "devices/downlink_slot_s",
    "device_energy_j": "devices/energy_j",
}


def step(sim_time_s: float) -> int:
    """Return the TensorBoard step of the simulated time ``sim_time_s``: milliseconds."""
    return round(sim_time_s * 1000)


def log_directory(path: str) -> Path:
    """Return the absolute log directory of run-config ``tensorboard`` (``~`` expanded).

    A relative path is taken from the working directory, like ``results-dir``.

    Raises
    ------
    ConfigError
        If ``path`` names something that is not a directory.
    """
    directory = Path(path).expanduser().resolve()
    if directory.exists() and not directory.is_dir():
        raise ConfigError("tensorboard", f"{str(directory)!r} exists and is not a directory")
    return directory


class TensorBoardWriter:
    """Round hook: writes each finished round to an event file in ``directory``.

    Parameters
    ----------
    directory
        The log directory (created); ``tensorboard --logdir`` shows it.
    initial
        Returns the initial model's test metrics (empty if none), read at round 1 and
        written at step 0.
    resumed_s
        The simulated time a resumed run goes on from: events of a killed run after it
        are dropped from the view (TensorBoard's ``purge_step``).
    """

    def __init__(
        self,
        directory: Path,
        initial: Callable[[], Mapping[str, float]],
        resumed_s: float | None = None,
    ) -> None:
        from torch.utils.tensorboard import SummaryWriter

        purge = None if resumed_s is None else step(resumed_s) + 1
        self.writer = SummaryWriter(str(directory), purge_step=purge)
        self.initial = initial

    def __call__(self, finished: FinishedRound) -> None:
        """Write the round's scalars and histograms, then flush them for a live view."""
        record = finished.record
        at = step(record.sim_time_s)
        if record.round == 1:
            self._metrics(self.initial(), 0)
        if finished.metrics is not None:
            self._metrics(finished.metrics, at)
        for field, tag in RECORD_TAGS.items():
            self.writer.add_scalar(tag, getattr(record, field), at)
        self.writer.add_scalar("schedule/participants", len(record.participants), at)
        self._histograms(record, at)
        self.writer.flush()

    def _metrics(self, metrics: Mapping[str, float], at: int) -> None:
        """Write the test-set metrics ``metrics`` at step ``at``."""
        for name, value in metrics.items():
            if name in METRIC_TAGS:
                self.writer.add_scalar(METRIC_TAGS[name], value, at)

    def _histograms(self, record: RoundRecord, at: int) -> None:
        """Write the per-device lists of ``record`` (none if no device was scheduled)."""
        for field, tag in HISTOGRAM_TAGS.items():
            values = getattr(record, field)
            if values:
                self.writer.add_histogram(tag, np.asarray(values, dtype=np.float64), at)

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


def tensorboard_hook(
    path: str, evaluation: TestSetEvaluation, resumed: Checkpoint | None
) -> TensorBoardWriter | None:
    """Return the round hook of run-config ``tensorboard`` = ``path`` (None if empty).

    Raises
    ------
    ConfigError
        As :func:`log_directory`.
    """
    if not path:
        return None
    resumed_s = float(resumed.strategy["sim_time_s"]) if resumed else None
    return TensorBoardWriter(log_directory(path), lambda: evaluation.initial, resumed_s)
