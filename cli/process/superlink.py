"""A private local Flower SuperLink: own FLWR_HOME and ports, always stopped afterwards.

``flwr run <app> local`` reuses whatever SuperLink answers on the local port and leaves the
one it starts running (Flower 1.42 notes, facts 4 and 7). Here the SuperLink is started by
us, from a neutral working directory, with runtime dependency installation disabled, on free
ports that ``flwr`` is pointed at through ``FLWR_LOCAL_SUPERLINK_HTTP_API_PORT`` and
``FLWR_LOCAL_CONTROL_API_PORT``; its whole process group is killed on exit. Its simulations
run on the Ray cluster named by ``RAY_ADDRESS`` in its environment (:mod:`cli.process.ray_cluster`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import IO, Any

CONNECTION = "local"
# The RAY_ADDRESS that makes ``ray.init()`` start a private Ray instance.
PRIVATE_RAY = "local"
_RUN_STARTED = re.compile(r"Successfully started run (\d+)")
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
# The SuperLink's umask: its state database (task tokens, run configs) is its owner's alone.
PRIVATE_UMASK = 0o077
# healthy() through a command prefix: argv is the port and, over TLS, the CA file.
_HEALTH_PROBE = (
    "import sys; from cli.process.superlink import healthy; "
    "sys.exit(not healthy(int(sys.argv[1]), *sys.argv[2:]))"
)


def executable(name: str) -> str:
    """Return the path of Flower's console script ``name``, preferring this interpreter's."""
    sibling = Path(sys.executable).parent / name
    if sibling.exists():
        return str(sibling)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found next to {sys.executable} or on PATH")
    return found


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct TCP ports on 127.0.0.1 that are free right now."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def healthy(port: int, cafile: Path | str | None = None, prefix: Sequence[str] = ()) -> bool:
    """Return whether the SuperLink on ``port`` answers its health endpoint.

    Over HTTPS trusting the CA in ``cafile`` if given. With a command ``prefix`` (another
    network stack, e.g. ``ip netns exec NS``) the check runs in a process started through it.
    """
    if prefix:
        probe = [*prefix, sys.executable, "-c", _HEALTH_PROBE, str(port)]
        probe += [str(cafile)] if cafile is not None else []
        done = subprocess.run(probe, capture_output=True, check=False, timeout=STARTUP_TIMEOUT_S)
        return done.returncode == 0
    tls = None if cafile is None else ssl.create_default_context(cafile=str(cafile))
    scheme = "http" if tls is None else "https"
    url = f"{scheme}://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=0.5, context=tls) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


class LocalSuperLink:
    """Context manager around a private ``flower-superlink --simulation``.

    Parameters
    ----------
    log_file
        Where the SuperLink writes its log.
    ray_address
        ``RAY_ADDRESS`` of its simulations: ``local`` (a private Ray, whatever else runs on
        the host) or the ``HOST:PORT`` of an existing Ray cluster.
    prefix
        Command prefix of the SuperLink and of ``flwr``, e.g. ``ip netns exec NS`` to run
        them in another network stack; none by default.
    environment
        Variables set for the SuperLink and its simulations besides this process's own.
    """

    connection = CONNECTION

    def __init__(
        self,
        log_file: Path,
        ray_address: str = PRIVATE_RAY,
        prefix: Sequence[str] = (),
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.log_file = Path(log_file)
        self.prefix = tuple(prefix)
        self.home = Path(tempfile.mkdtemp(prefix="feel-flwr-"))
        self.http_port, self.control_port = free_ports(2)
        self.env = {
            **os.environ,
            "FLWR_HOME": str(self.home),
            "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(self.http_port),
            "FLWR_LOCAL_CONTROL_API_PORT": str(self.control_port),
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            "FLWR_TELEMETRY_ENABLED": "0",
            "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
            "RAY_ADDRESS": ray_address,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            **(environment or {}),
        }
        self.process: subprocess.Popen | None = None
        self._children: list[subprocess.Popen] = []

    def __enter__(self) -> LocalSuperLink:
        """Start the SuperLink and wait until it is healthy."""
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the SuperLink and everything started through it."""
        self.stop()

    def command(self) -> list[str]:
        """Return the ``flower-superlink`` command line: simulation, loopback, private ports."""
        return [
            executable("flower-superlink"),
            "--insecure",
            "--simulation",
            "--isolation=subprocess",
            f"--control-api-address=127.0.0.1:{self.control_port}",
            "--host=127.0.0.1",
            f"--port={self.http_port}",
            f"--database={self.home / 'state.db'}",
            f"--log-file={self.log_file}",
        ]

    def healthy(self) -> bool:
        """Return whether the SuperLink answers its health endpoint."""
        return healthy(self.http_port, prefix=self.prefix)

    def start(self) -> None:
        """Start :meth:`command` (after the prefix) as the leader of a new process group.

        It runs with umask :data:`PRIVATE_UMASK`, so the files it makes are its owner's only.

        Raises
        ------
        RuntimeError
            If it exits or is not healthy within ``STARTUP_TIMEOUT_S``.
        """
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [*self.prefix, *self.command()],
            cwd=self.home,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            umask=PRIVATE_UMASK,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self.healthy():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"flower-superlink exited with code {self.process.returncode}; "
                    f"see {self.log_file}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"flower-superlink not healthy after {STARTUP_TIMEOUT_S:.0f} s")
            time.sleep(0.2)

    def flwr(self, *args: str, stdout: IO[Any] | int | None = None) -> subprocess.Popen:
        """Start ``flwr *args`` against this SuperLink, from its neutral working directory."""
        child = subprocess.Popen(
            [*self.prefix, executable("flwr"), *args],
            cwd=self.home,
            env=self.env,
            stdout=stdout,
            stderr=subprocess.STDOUT if stdout is not None else None,
        )
        self._children.append(child)
        return child

    def start_run(
        self, app_dir: Path, run_config: Path, federation_config: str, log: IO[Any]
    ) -> subprocess.Popen:
        """Start ``flwr run <app_dir> <connection> --stream``, its output going to ``log``.

        Parameters
        ----------
        app_dir
            The Flower app (a directory with a pyproject.toml).
        run_config
            A TOML file of run-config overrides.
        federation_config
            Simulation settings, e.g. ``"num-supernodes=6 client-resources-num-cpus=1"``;
            empty for none.
        log
            An open file for the run's output (the streamed log included).
        """
        federation = ["--federation-config", federation_config] if federation_config else []
        return self.flwr(
            "run",
            str(app_dir),
            self.connection,
            "--stream",
            "--run-config",
            str(run_config),
            *federation,
            stdout=log,
        )

    def run_status(self, run_id: int) -> str:
        """Return the status of run ``run_id``: ``finished:completed``, ``finished:failed``, ..."""
        arguments = ("ls", self.connection, "--run-id", str(run_id), "--format", "json")
        listing = self.flwr(*arguments, stdout=subprocess.PIPE)
        out, _ = listing.communicate(timeout=60)
        runs = json.loads(out).get("runs", [])
        return runs[0]["status"] if runs else "unknown"

    def stop(self) -> None:
        """Stop the ``flwr`` children, then kill the SuperLink's process group; delete FLWR_HOME."""
        for child in self._children:
            if child.poll() is None:
                child.terminate()
                child.wait(STOP_TIMEOUT_S)
        if self.process is not None and self.process.poll() is None:
            kill_trees([self.process])
        shutil.rmtree(self.home, ignore_errors=True)


def _process_groups(root: int) -> set[int]:
    """Return the process groups of ``root`` and all its descendants (a ``ps`` snapshot).

    The SuperLink starts ``flower-superexec`` in a session of its own, and Ray's processes
    follow the ``flwr-simulation`` it spawns, so one group is not enough.
    """
    table = subprocess.run(
        ["ps", "-A", "-o", "pid=,ppid=,pgid="], capture_output=True, text=True, check=True
    ).stdout
    children: dict[int, list[int]] = {}
    group: dict[int, int] = {}
    for line in table.splitlines():
        pid, ppid, pgid = (int(field) for field in line.split())
        children.setdefault(ppid, []).append(pid)
        group[pid] = pgid
    groups, stack = set(), [root]
    while stack:
        pid = stack.pop()
        if pid in group:
            groups.add(group[pid])
        stack.extend(children.get(pid, []))
    return groups - {os.getpgrp()}


def _signal_groups(groups: set[int], signum: int) -> set[int]:
    """Send ``signum`` to each process group; return the groups that still exist."""
    alive = set()
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signum)
            alive.add(pgid)
    return alive


def kill_trees(processes: Sequence[subprocess.Popen], signum: int = signal.SIGTERM) -> None:
    """Send ``signum`` to the processes and their descendants' groups; SIGKILL what is left.

    The grace time before SIGKILL is ``STOP_TIMEOUT_S``; the processes are reaped.
    """
    groups = {pgid for p in processes for pgid in _process_groups(p.pid) | {p.pid}}
    alive = _signal_groups(groups, signum)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        for process in processes:
            process.poll()  # reap our own children, or their groups never empty
        alive = _signal_groups(alive, 0)
    _signal_groups(alive, signal.SIGKILL)
    for process in processes:
        process.wait()


def run_id_from_output(text: str) -> int | None:
    """Return the run id that ``flwr run`` reported in ``text``, if any."""
    match = _RUN_STARTED.search(text)
    return int(match.group(1)) if match else None
