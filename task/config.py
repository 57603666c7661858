"""The app's run config: one :class:`Key` per run-config key, its defaults and checks.

pyproject's ``[tool.flwr.app.config]`` mirrors :data:`DEFAULTS`; ``feel simulate`` has one
option per key that is not derived.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from task.errors import ConfigError
from task.names import (
    AGGREGATIONS,
    ATTACKS,
    BN_STATISTICS,
    DATASET_NAMES,
    DEVICE_NAMES,
    LR_SCALINGS,
    MODEL_NAMES,
    PARTITION_NAMES,
    SCENARIO_NAMES,
)

Value = bool | int | float | str


@dataclass(frozen=True)
class Key:
    """One run-config key.

    Attributes
    ----------
    name
        The run-config key, e.g. ``num-server-rounds``.
    default
        Its default; its type is the key's type.
    help
        What the key sets, for the command line.
    low, high
        The smallest and largest allowed values (numbers), if any.
    above
        The bound that values must exceed (numbers without ``low``), if any.
    choices
        The allowed values (names), if the key is name-valued and checked here.
    alias
        The name of its command-line option, if not the key's.
    derived
        Whether the command line sets it from other options (no option of its own).
    path
        Whether it is a file or directory path (resolved on the command line).
    """

    name: str
    default: Value
    help: str
    low: float | None = None
    high: float | None = None
    above: float | None = None
    choices: tuple[str, ...] = ()
    alias: str = ""
    derived: bool = False
    path: bool = False

    @property
    def kind(self) -> type:
        """Return the type of the key's values."""
        return type(self.default)

    @property
    def option(self) -> str:
        """Return the key's command-line option, e.g. ``--rounds``."""
        return f"--{self.alias or self.name}"

    def typed(self, value: Any) -> Value:
        """Return ``value`` as the key's type (ints pass as floats).

        Floats must be finite (a power in dBm may be negative: it is still a positive power).

        Raises
        ------
        ConfigError
            If ``value`` has another type, or is not finite.
        """
        kind = self.kind
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not kind:
            raise ConfigError(self.name, f"expected {kind.__name__}, got {value!r}")
        if kind is float and not math.isfinite(value):
            raise ConfigError(self.name, f"must be a finite number, got {value!r}")
        return value

    def parse(self, text: str) -> Value:
        """Return the value written as ``text`` (``true`` or ``false`` for a bool).

        Raises
        ------
        ConfigError
            If ``text`` is no value of the key's type.
        """
        if self.kind is bool:
            if text.lower() not in ("true", "false"):
                raise ConfigError(self.name, f"expected true or false, got {text!r}")
            return text.lower() == "true"
        try:
            return self.kind(text)
        except ValueError:
            raise ConfigError(self.name, f"expected {self.kind.__name__}, got {text!r}") from None

    def check_range(self, value: Value) -> None:
        """Check that the number ``value`` lies within ``low`` (or ``above``) and ``high``.

        Raises
        ------
        ConfigError
            If it does not.
        """
        if self.low is not None and self.high is not None:
            ok, rule = self.low <= value <= self.high, f"between {self.low:g} and {self.high:g}"
        elif self.low is not None:
            ok, rule = value >= self.low, f">= {self.low:g}"
        elif self.above is not None:
            ok, rule = value > self.above, f"> {self.above:g}"
        else:
            return
        if not ok:
            raise ConfigError(self.name, f"must be {rule}, got {value!r}")

    def check_choice(self, value: Value) -> None:
        """Check that ``value`` is one of ``choices`` (if the key has any).

        Raises
        ------
        ConfigError
            If it is not.
        """
        if self.choices and value not in self.choices:
            raise ConfigError.unknown_choice(self.name, value, self.choices)


_KEYS = (
    Key(
        "scheme",
        "proposed",
        "training scheme: proposed (the paper's optimal policy), online, full, random, "
        "gradient-feel, gradient-feel-bmax, model-feel, individual, a scheduler policy "
        "(fixed, equal) or package.module:Class",
    ),
    Key("num-server-rounds", 60, "communication rounds (at most)", low=1, alias="rounds"),
    Key(
        "time-budget-s",
        0.0,
        "stop once the simulated time reaches this many seconds (0: no budget)",
        low=0,
    ),
    Key(
        "eval-every",
        1,
        "evaluate on the test set every this many rounds, and after the last",
        low=1,
    ),
    Key(
        "eval-every-s",
        0.0,
        "evaluate in the rounds that cross each multiple of this many simulated seconds, and "
        "after the last (0: use eval-every)",
        low=0,
    ),
    Key(
        "equal-slots", False, "equal TDMA slots for online, full, random, model-feel and individual"
    ),
    Key(
        "fixed-batch",
        0,
        "batch per device of gradient-feel-bmax (0: B^max, capped at the local data)",
        low=0,
    ),
    Key(
        "local-batch", 10, "mini-batch size of the local epochs of model-feel and individual", low=1
    ),
    Key(
        "patience",
        3,
        "individual: epochs without a better training loss before a device stops",
        low=1,
    ),
    Key("min-delta", 0.01, "individual: training-loss decrease that counts as better", low=0),
    Key(
        "min-nodes",
        1,
        "devices to wait for before the first round (set from the number of devices)",
        low=1,
        derived=True,
    ),
    Key(
        "min-devices",
        1,
        "stop the run when fewer devices than this are left in a round after "
        "excluding the faulty ones",
        low=1,
    ),
    Key(
        "inject-faults",
        0.0,
        "probability that a device's reply is faulty (seeded fault injection)",
        low=0,
        high=1,
    ),
    Key(
        "attacker",
        -1,
        "partition id of the one device that attacks in every round with --attack (-1: none)",
        low=-1,
    ),
    Key(
        "attack",
        "scaled-gradient",
        "the attacker's fault: scaled-gradient (its update times --attack-scale), "
        "lying-profile (cpu-hz 1e12 and a 0 dB path gain), foreign-partition (from round "
        "2 on, reports in the next device's partition id) or huge-statistics (its "
        "BatchNorm statistics times --attack-scale)",
        choices=ATTACKS,
    ),
    Key(
        "attack-scale",
        1e30,
        "factor of the attacker's scaled-gradient update or huge-statistics statistics",
        above=0,
    ),
    Key(
        "resume",
        False,
        "continue the run in results-dir after its last complete round (set by --resume)",
        derived=True,
    ),
    Key(
        "connect-timeout-s",
        600.0,
        "seconds to wait for min-nodes devices to connect before the first round",
        above=0,
    ),
    Key(
        "round-timeout-s",
        300.0,
        "seconds a phase of a round waits for its replies at most; it goes on with those in",
        above=0,
    ),
    Key(
        "round-quorum",
        0.5,
        "fraction of a phase's devices whose replies start the grace period (1: wait for "
        "all, up to round-timeout-s); off in simulation, where every device replies",
        above=0,
        high=1,
    ),
    Key(
        "round-grace-s",
        30.0,
        "seconds the other devices of a phase get once its quorum has replied",
        low=0,
    ),
    Key(
        "max-silent-rounds",
        3,
        "rounds in a row without a reply after which a device is dropped from the run (0: never)",
        low=0,
    ),
    Key(
        "node-partitions",
        "",
        "JSON file pinning each node id to its partition id; a node not in it is refused "
        "(empty: a partition is pinned to the first node that reports it)",
        path=True,
    ),
    Key("seed", 0, "seed of the fleet, partitions, sampling and model initialisation", low=0),
    Key(
        "dataset",
        "digits",
        "dataset (digits is bundled; cifar10 needs --data-dir)",
        choices=DATASET_NAMES,
    ),
    Key("data-dir", "", "directory holding the dataset files", path=True),
    Key(
        "partition",
        "iid",
        "data partition: iid, shards (non-IID, 2 label shards per device), dirichlet",
        choices=PARTITION_NAMES,
    ),
    Key("dirichlet-alpha", 0.5, "concentration of the dirichlet partition", above=0),
    Key(
        "holdout-examples",
        0,
        "training examples held out of every device's data: feel pretrain's slice",
        low=0,
    ),
    Key(
        "initial-model",
        "",
        "model file written by feel pretrain to start from (empty: a fresh model)",
        path=True,
    ),
    Key("model", "cnn", "model: cnn, resnet18, densenet121, mobilenetv2", choices=MODEL_NAMES),
    Key(
        "system-model",
        "",
        "model whose size p and training FLOPs per sample (at 3x32x32) the latency model "
        "charges, while --model trains; empty: the trained model",
        choices=("", *MODEL_NAMES),
    ),
    Key(
        "device",
        "auto",
        "torch device for training and evaluation: auto, cpu, cuda",
        choices=DEVICE_NAMES,
    ),
    Key(
        "gradient-chunk",
        1024,
        "examples per forward and backward pass of one local gradient (memory only: chunk "
        "gradients are summed weighted by size; with BatchNorm each chunk uses its own statistics)",
        low=1,
    ),
    Key(
        "scenario",
        "cpu",
        "device compute model: cpu (Sec. III) or gpu (Sec. V)",
        choices=SCENARIO_NAMES,
    ),
    Key(
        "gradient-bits",
        32,
        "bits b per element of the gradient uploads and the global gradient broadcast; "
        "below 32 both travel stochastically quantized and bit-packed",
        low=1,
        high=32,
    ),
    Key(
        "model-bits",
        32,
        "bits per element of the model uploads and downloads of model-feel and individual; "
        "below 32 a device uploads its parameters' change quantized and bit-packed",
        low=1,
        high=32,
    ),
    Key("learning-rate", 0.05, "base learning rate eta0 (eta = eta0 sqrt(B / B0))", above=0),
    Key(
        "lr-scaling",
        "sqrt",
        "learning-rate law: sqrt (eta = eta0 sqrt(B / B0), Sec. III-A) or fixed (eta = eta0)",
        choices=LR_SCALINGS,
    ),
    Key(
        "bn-statistics",
        "global-batch",
        "BatchNorm statistics of gradient schemes: global-batch (the last global batch's, "
        "pooled from the devices') or momentum (PyTorch's average, momentum 0.1, once a round)",
        choices=BN_STATISTICS,
    ),
    Key(
        "aggregation",
        "clipped",
        "how the updates are combined: mean (Eq. 1), clipped (each update's norm at most "
        "clip-multiple x the round's median, then Eq. 1), trimmed-mean or median "
        "(coordinate-wise, weighted by batch or data size)",
        choices=AGGREGATIONS,
    ),
    Key(
        "clip-multiple",
        4.0,
        "clipped: bound on an update's L2 norm, in multiples of the round's median norm",
        above=0,
    ),
    Key(
        "trim-fraction",
        0.2,
        "trimmed-mean: share of the total weight cut at each end of every coordinate",
        low=0,
        high=0.45,
    ),
    Key(
        "max-cpu-hz",
        3e9,
        "plausibility bound: a device reporting a faster CPU clock is excluded (Table I: "
        "at most 2.1 GHz)",
        above=0,
    ),
    Key(
        "min-distance-m",
        10.0,
        "plausibility bound: a device reporting a path gain above Table I's at this distance "
        "is excluded (the fleet's devices are at least 10 m away)",
        above=0,
    ),
    Key(
        "max-distance-m",
        2000.0,
        "plausibility bound: a device reporting a path gain below Table I's at this distance "
        "is excluded (10 cell radii: a lie that slows the round's uploads is bounded)",
        above=0,
    ),
    Key(
        "max-fading",
        50.0,
        "plausibility bound on a reported Rayleigh fading power |h|^2 ~ Exp(1) "
        "(P(|h|^2 > 50) = e^-50)",
        above=0,
    ),
    Key(
        "min-gpu-floor-s",
        1e-4,
        "plausibility bound: a GPU device reporting a latency floor t^l below this, or a "
        "batch threshold B^th above max-batch, is excluded",
        low=0,
    ),
    Key(
        "max-flops-per-cycle",
        1024.0,
        "plausibility bound: a CPU device whose cycles per sample or per update claim more of "
        "the model's FLOPs per cycle is excluded (16 AVX-512 cores with 2 FMA units: 1024)",
        above=0,
    ),
    Key(
        "max-gpu-flops",
        1e15,
        "plausibility bound: a GPU device whose latencies claim more of the model's FLOPs per "
        "second is excluded (an H100's dense FP16 peak: about 1e15)",
        above=0,
    ),
    Key(
        "min-flops",
        1e7,
        "plausibility bound: a device whose profile claims training or updating at fewer of "
        "the model's FLOPs per second is excluded (Sec. VI-B's slowest CPU: 7e8)",
        low=0,
    ),
    Key("base-batch", 64, "base global batch B0 of the learning-rate scaling", low=1),
    Key("max-batch", 128, "largest batch per device B^max", low=1),
    Key("min-batch", 1, "smallest batch per device", low=1),
    Key(
        "cycles-per-flop", 1.0, "CPU cycles per FLOP of training (sets cycles per sample)", above=0
    ),
    Key(
        "fleet-file",
        "",
        "TOML or JSON file of the devices; without one they derive from --seed",
        path=True,
    ),
    Key("results-dir", "", "results directory", path=True),
    Key(
        "tensorboard",
        "",
        "directory of TensorBoard logs: each round's metrics, latencies, schedule and energy, "
        "at the simulated time in ms",
        path=True,
    ),
    Key(
        "probe-examples",
        0,
        "training examples of the fixed probe set whose training loss (Eq. 4) is written "
        "per evaluated round as probe_loss (0: none)",
        low=0,
    ),
    Key("bandwidth-hz", 10e6, "system bandwidth W", above=0),
    Key("tx-power-dbm", 28.0, "transmit power of devices and base station"),
    Key(
        "effective-capacitance",
        2e-28,
        "kappa of a CPU device's computation energy kappa C B f^2 (J/cycle/Hz^2)",
        low=0,
    ),
    Key("gpu-power-w", 250.0, "power a GPU device draws while it computes", low=0),
    Key(
        "idle-power-w",
        0.0,
        "power a device draws listening idle for the rest of a round (0: not counted)",
        low=0,
    ),
    Key("noise-dbm-per-hz", -174.0, "noise power density N0"),
    Key("cell-radius-m", 200.0, "cell radius", above=0),
    Key("frame-s", 0.01, "uplink and downlink TDMA frame length", above=0),
    Key("fading", False, "schedule on this round's fading sample instead of the average rate"),
    Key(
        "ray-zero-copy",
        True,
        "carry model and gradient arrays through Ray's object store without copies "
        "(simulation only)",
    ),
)

KEYS: dict[str, Key] = {key.name: key for key in _KEYS}
DEFAULTS: dict[str, Value] = {key.name: key.default for key in _KEYS}


def resolve_run_config(run_config: Mapping[str, Any]) -> dict[str, Value]:
    """Overlay ``run_config`` on :data:`DEFAULTS` and check every value.

    Types come first, then ranges, then ``min-batch`` <= ``max-batch``, then choices. The
    scheme is checked where the strategy is built (:func:`strategy.check_scheme`).

    Raises
    ------
    ConfigError
        Naming the first unknown key or bad value.
    """
    unknown = sorted(set(run_config) - set(KEYS))
    if unknown:
        raise ConfigError(unknown[0], f"unknown run-config key; known: {', '.join(KEYS)}")
    config = {name: KEYS[name].typed(value) for name, value in {**DEFAULTS, **run_config}.items()}
    for key in _KEYS:
        key.check_range(config[key.name])
    if config["min-batch"] > config["max-batch"]:
        raise ConfigError(
            "min-batch", f"{config['min-batch']} exceeds max-batch {config['max-batch']}"
        )
    for key in _KEYS:
        key.check_choice(config[key.name])
    return config
