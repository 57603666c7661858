"""The Ray cluster a simulation runs on: a private one, or an existing cluster that answers.

Flower's Ray backend calls ``ray.init()`` without an address, so Ray takes the cluster from
``RAY_ADDRESS`` in the environment of the SuperLink; without one it would attach to the
cluster of the last ``ray start --head`` on this host, or else start a private one-node Ray.
:func:`ray_address` turns ``--ray-address`` (or ``RAY_ADDRESS``) into the value that the
SuperLink gets: ``local``, which makes Ray start a private instance whatever runs on the
host, or the ``HOST:PORT`` of a cluster's GCS that answers, checked before anything starts.
"""

from __future__ import annotations

import os
import socket
import subprocess

from cli.errors import UsageError
from cli.process.superlink import PRIVATE_RAY, executable

CONNECT_TIMEOUT_S = 3.0
# ``ray health-check`` answers in about 1.5 s; against a port that is not a GCS it waits 36 s.
HEALTH_CHECK_TIMEOUT_S = 15.0


def ray_address(option: str | None) -> str:
    """Return the ``RAY_ADDRESS`` of the run: ``local``, or the ``HOST:PORT`` of a live cluster.

    ``option`` is ``--ray-address``; without it, ``RAY_ADDRESS`` of the environment is used.
    ``auto`` resolves as in Ray (``RAY_ADDRESS``, then the last ``ray start --head`` on this
    host, recorded under ``$RAY_TMPDIR``, ``$TMPDIR`` or ``/tmp``).

    Raises
    ------
    UsageError
        Naming ``--ray-address`` (or ``RAY_ADDRESS``) and the value if it is a Ray Client
        address, malformed, or no Ray cluster answers there.
    """
    field = "--ray-address" if option is not None else "RAY_ADDRESS"
    value = option if option is not None else os.environ.get("RAY_ADDRESS", "")
    if value in ("", PRIVATE_RAY):
        return PRIVATE_RAY
    if "://" in value:
        raise UsageError(field, f"{value!r} is a Ray Client address; give the head's HOST:PORT")
    from ray._private.services import canonicalize_bootstrap_address

    try:
        address = canonicalize_bootstrap_address(value)
    except (ConnectionError, ValueError) as exc:
        raise UsageError(field, f"{value!r}: {exc}") from None
    if address is None:  # auto, with RAY_ADDRESS=local
        return PRIVATE_RAY
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(field, f"{value!r} is not HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise UsageError(field, f"cannot reach a Ray cluster at {value!r}: {exc}") from None
    _check_health(field, value, address)
    return address


def _check_health(field: str, value: str, address: str) -> None:
    """Check that a Ray GCS of this Ray version answers at ``address`` (``ray health-check``).

    Raises
    ------
    UsageError
        With the health check's last line, or if it does not answer in time.
    """
    command = [executable("ray"), "health-check", "--address", address]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=HEALTH_CHECK_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        reason = f"no Ray cluster answered at {address} within {HEALTH_CHECK_TIMEOUT_S:.0f} s"
        raise UsageError(field, f"{value!r}: {reason}") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()] or ["no output"]
        raise UsageError(field, f"{value!r}: ray health-check failed: {lines[-1].strip()}")
