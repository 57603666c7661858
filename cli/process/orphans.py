"""The processes of a run whose ``feel`` command was killed: found by FLWR_HOME and stopped.

The SuperLink runs in a session of its own, and a ``feel simulate`` stops it on exit, on
Ctrl-C and on SIGTERM. Killed outright (SIGKILL, the OOM killer) it cannot: the SuperLink,
the ServerApp and Ray go on, still writing into the results directory. So while a run is
live its results directory holds ``superlink.json``, naming the command's pid and the
SuperLink's private FLWR_HOME, which every process of the run inherits. The next run in
that directory (a resume, say) stops those processes first. Linux only (``/proc``);
elsewhere nothing is found.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from cli.errors import UsageError

MARKER_FILE = "superlink.json"
STOP_TIMEOUT_S = 10.0


def mark(directory: Path, flwr_home: Path) -> None:
    """Record in ``directory`` that this process runs a SuperLink with ``flwr_home``."""
    marker = {"pid": os.getpid(), "flwr_home": str(flwr_home)}
    (Path(directory) / MARKER_FILE).write_text(json.dumps(marker) + "\n")


def unmark(directory: Path) -> None:
    """Remove the record of a run that stopped its processes itself."""
    (Path(directory) / MARKER_FILE).unlink(missing_ok=True)


def processes_of(flwr_home: str) -> list[int]:
    """Return the pids of this user's processes of the run with FLWR_HOME ``flwr_home``.

    Those are the processes whose FLWR_HOME is ``flwr_home`` or below it, and their descendants.
    (A local deployment's SuperNodes have homes inside the SuperLink's.) Descendants count
    because a process that sets its title (Ray's agents and workers) may overwrite the start
    of its environment, FLWR_HOME with it.
    """
    entry = f"FLWR_HOME={flwr_home}".encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        if any(v == entry or v.startswith(entry + b"/") for v in environ.split(b"\0")):
            found.append(int(proc.name))
    return sorted(with_descendants(found))


def with_descendants(pids: Iterable[int]) -> set[int]:
    """Return ``pids`` and all their live descendants (from ``/proc``)."""
    parents = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            parents[int(proc.name)] = int(_stat_fields(int(proc.name))[1])
        except OSError:  # gone
            continue
    found = set(pids)
    while children := {pid for pid, parent in parents.items() if parent in found} - found:
        found |= children
    return found


def _stat_fields(pid: int) -> list[str]:
    """Return the fields of ``/proc/<pid>/stat`` after the command name: state, parent pid, ...

    Raises
    ------
    OSError
        If the process is gone (or not readable).
    """
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _running(pid: int) -> bool:
    """Return whether ``pid`` is a live process (a zombie is not)."""
    try:
        return _stat_fields(pid)[0] != "Z"
    except OSError:
        return False


def stop_orphans(directory: Path) -> int:
    """Kill what a killed run in ``directory`` left running; return how many processes.

    Raises
    ------
    UsageError
        If the ``feel`` command of that run is still alive: two runs cannot share a
        results directory.
    """
    path = Path(directory) / MARKER_FILE
    if not path.is_file():
        return 0
    marker = json.loads(path.read_text())
    if marker["pid"] != os.getpid() and _running(marker["pid"]):
        raise UsageError(
            "--results-dir", f"{directory} is in use by a running feel (pid {marker['pid']})"
        )
    pids = processes_of(marker["flwr_home"])
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while processes_of(marker["flwr_home"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    shutil.rmtree(marker["flwr_home"], ignore_errors=True)
    path.unlink()
    return len(pids)
