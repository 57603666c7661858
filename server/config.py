"""The app's run config: defaults (mirrored in pyproject's [tool.flwr.app.config]) and checks."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from task.errors import ConfigError
from task.names import DATASET_NAMES, DEVICE_NAMES, MODEL_NAMES, PARTITION_NAMES

Value = bool | int | float | str

DEFAULTS: dict[str, Value] = {
    "scheme": "proposed",
    "num-server-rounds": 60,
    "time-budget-s": 0.0,
    "eval-every": 1,
    "equal-slots": False,
    "fixed-batch": 0,
    "local-batch": 10,
    "patience": 3,
    "min-delta": 0.01,
    "min-nodes": 1,
    "min-devices": 1,
    "inject-faults": 0.0,
    "resume": False,
    "round-timeout-s": 3600.0,
    "seed": 0,
    "dataset": "digits",
    "data-dir": "",
    "partition": "iid",
    "dirichlet-alpha": 0.5,
    "model": "cnn",
    "device": "auto",
    "scenario": "cpu",
    "gradient-bits": 32,
    "learning-rate": 0.05,
    "base-batch": 64,
    "max-batch": 128,
    "min-batch": 1,
    "cycles-per-flop": 1.0,
    "fleet-file": "",
    "results-dir": "",
    "bandwidth-hz": 10e6,
    "tx-power-dbm": 28.0,
    "noise-dbm-per-hz": -174.0,
    "cell-radius-m": 200.0,
    "frame-s": 0.01,
    "fading": False,
}

SCENARIOS = ("cpu", "gpu")


def _at_least(bound: float) -> tuple[Callable[[float], bool], str]:
    return (lambda v: v >= bound), f"must be >= {bound:g}"


def _positive() -> tuple[Callable[[float], bool], str]:
    return (lambda v: v > 0), "must be > 0"


_BOUNDS: dict[str, tuple[Callable[[float], bool], str]] = {
    "num-server-rounds": _at_least(1),
    "time-budget-s": _at_least(0),
    "eval-every": _at_least(1),
    "fixed-batch": _at_least(0),
    "local-batch": _at_least(1),
    "patience": _at_least(1),
    "min-delta": _at_least(0),
    "min-nodes": _at_least(1),
    "min-devices": _at_least(1),
    "inject-faults": ((lambda v: 0 <= v <= 1), "must be between 0 and 1"),
    "round-timeout-s": _positive(),
    "seed": _at_least(0),
    "dirichlet-alpha": _positive(),
    "gradient-bits": ((lambda v: 1 <= v <= 32), "must be between 1 and 32"),
    "learning-rate": _positive(),
    "base-batch": _at_least(1),
    "max-batch": _at_least(1),
    "min-batch": _at_least(1),
    "cycles-per-flop": _positive(),
    "bandwidth-hz": _positive(),
    "cell-radius-m": _positive(),
    "frame-s": _positive(),
}


def _choices() -> dict[str, tuple[str, ...]]:
    """Return the allowed values of the name-valued keys."""
    return {
        "dataset": DATASET_NAMES,
        "partition": PARTITION_NAMES,
        "model": MODEL_NAMES,
        "device": DEVICE_NAMES,
        "scenario": SCENARIOS,
    }


def _typed(key: str, value: Any) -> Value:
    """``value`` converted to the type of the default of ``key`` (ints pass as floats).

    Floats must be finite (a power in dBm may be negative: it is still a positive power).
    """
    kind = type(DEFAULTS[key])
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not kind:
        raise ConfigError(key, f"expected {kind.__name__}, got {value!r}")
    if kind is float and not math.isfinite(value):
        raise ConfigError(key, f"must be a finite number, got {value!r}")
    return value


def resolve_run_config(run_config: Mapping[str, Any]) -> dict[str, Value]:
    """Overlay ``run_config`` on :data:`DEFAULTS` and check every value.

    The scheme is checked where the strategy is built (:func:`strategy.check_scheme`).

    Raises
    ------
    ConfigError
        Naming the first unknown key or bad value.
    """
    unknown = sorted(set(run_config) - set(DEFAULTS))
    if unknown:
        raise ConfigError(unknown[0], f"unknown run-config key; known: {', '.join(DEFAULTS)}")
    config = {key: _typed(key, value) for key, value in {**DEFAULTS, **run_config}.items()}
    for key, (ok, rule) in _BOUNDS.items():
        if not ok(config[key]):
            raise ConfigError(key, f"{rule}, got {config[key]!r}")
    if config["min-batch"] > config["max-batch"]:
        raise ConfigError(
            "min-batch", f"{config['min-batch']} exceeds max-batch {config['max-batch']}"
        )
    for key, allowed in _choices().items():
        if config[key] not in allowed:
            raise ConfigError(
                key, f"unknown {key} {config[key]!r}; choose from {', '.join(allowed)}"
            )
    return config
