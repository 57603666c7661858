"""Training schemes by name: each is a scheduler policy (Sec. VI-D)."""

from __future__ import annotations

from typing import Any

from scheduler import Policy, get_policy

# Scheme names that differ from the scheduler's policy names; any other scheme is passed to
# ``scheduler.get_policy`` as is (a registered name or ``package.module:Class``).
SCHEME_POLICIES = {"proposed": "optimal"}


def policy_for_scheme(scheme: str, **options: Any) -> Policy:
    """Build the scheduler policy of ``scheme`` with ``options``.

    Raises
    ------
    scheduler.PolicyError
        For an unknown scheme or an import path that does not load.
    """
    return get_policy(SCHEME_POLICIES.get(scheme, scheme), **options)
