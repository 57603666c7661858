"""Policies by name, or by import path ``package.module:Class`` for a user's own."""

from __future__ import annotations

import importlib
from typing import Any

from scheduler.policies import (
    EqualPolicy,
    FixedBatchPolicy,
    FullPolicy,
    OnlinePolicy,
    OptimalPolicy,
    Policy,
    RandomPolicy,
)

_REGISTRY: dict[str, type] = {
    "optimal": OptimalPolicy,
    "online": OnlinePolicy,
    "full": FullPolicy,
    "random": RandomPolicy,
    "fixed": FixedBatchPolicy,
    "equal": EqualPolicy,
}


class PolicyError(ValueError):
    """An unknown policy name or import path, or options it does not take."""


def policy_names() -> tuple[str, ...]:
    """Names of the registered policies."""
    return tuple(_REGISTRY)


def register_policy(name: str, cls: type) -> None:
    """Register ``cls`` (constructed with keyword options) under ``name``."""
    _REGISTRY[name] = cls


def _load(path: str) -> type:
    """Import ``package.module:Class``."""
    module_name, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise PolicyError(f"policy: cannot import {path!r} ({exc})") from None


def get_policy(name: str, **options: Any) -> Policy:
    """Build the policy ``name`` (registered, or ``package.module:Class``) with ``options``.

    Raises
    ------
    PolicyError
        For an unknown name, an import path that does not load, a class that is no
        :class:`~scheduler.policies.Policy`, or options the policy does not take.
    """
    if ":" in name:
        cls = _load(name)
    elif name in _REGISTRY:
        cls = _REGISTRY[name]
    else:
        known = ", ".join(_REGISTRY)
        raise PolicyError(
            f"policy: unknown policy {name!r} (known: {known}, or package.module:Class)"
        )
    try:
        policy = cls(**options)
    except TypeError as exc:
        raise PolicyError(
            f"policy: {name!r} does not take options {sorted(options)} ({exc})"
        ) from None
    if not isinstance(policy, Policy):
        raise PolicyError(f"policy: {name!r} has no name and allocate(instance, round_index)")
    return policy
