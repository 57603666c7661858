"""The device-facing TLS proxy of a secure deployment: nginx, forwarding only the Fleet API.

Flower 1.42 serves its Fleet, Control and Runtime APIs on one port, and the open-source
Control API accepts every request: whoever reaches that port can register SuperNode keys,
start apps that run on the server and the devices, and claim the ServerApp's task. A secure
deployment therefore binds the SuperLink to the server's loopback and puts nginx on the
address the devices dial, with ``fleet-proxy.nginx.conf`` (next to this module, the same
file the README gives operators): ``/v1/fleet/`` and ``/health`` are forwarded over TLS,
every other path gets 403, request bodies over 6 MiB get 413, and each device address is
rate-limited.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from cli.process.credentials import TlsFiles
from cli.process.superlink import STARTUP_TIMEOUT_S, kill_trees

TEMPLATE = Path(__file__).with_name("fleet-proxy.nginx.conf")
_NAME = re.compile(r"\$\{(FEEL_[A-Z_]+)\}")
# The main configuration around the template: nginx's own files stay in the proxy directory.
_MAIN = """\
pid {directory}/nginx.pid;
error_log {directory}/error.log;
worker_processes 1;
events {{ worker_connections 512; }}
http {{
    access_log {directory}/access.log;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    include {directory}/fleet-proxy.conf;
}}
"""


def _listening(pid: int, port: int) -> bool:
    """Whether a TCP socket listens on ``port`` in the network namespace of process ``pid``.

    Read from ``/proc/<pid>/net/tcp``, which shows that process's namespace.
    """
    try:
        table = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:  # gone
        return False
    listen_state = "0A"
    for row in table:
        fields = row.split()
        local, state = fields[1], fields[3]
        if state == listen_state and int(local.rpartition(":")[2], 16) == port:
            return True
    return False


class NginxMissingError(RuntimeError):
    """nginx is not installed (Debian: ``apt-get install nginx-light``)."""


def render(values: Mapping[str, str]) -> str:
    """Return the proxy template with its ``${FEEL_...}`` names filled in from ``values``.

    nginx's own ``$variables`` stay, as with ``envsubst '$FEEL_...'``.

    Raises
    ------
    KeyError
        If a name of the template is not in ``values``.
    """
    text = TEMPLATE.read_text()
    if missing := set(_NAME.findall(text)) - values.keys():
        raise KeyError(f"the proxy template needs {sorted(missing)}")
    return _NAME.sub(lambda match: values[match.group(1)], text)


class FleetProxy:
    """nginx on ``listen`` (``HOST:PORT``) forwarding the Fleet API to ``superlink``.

    Parameters
    ----------
    directory
        Where its configuration, logs and pid file go.
    listen
        The address devices dial.
    superlink
        The SuperLink's loopback address, ``127.0.0.1:PORT``.
    tls
        The deployment's CA and server certificate (which names ``listen`` and localhost).
    prefix
        Command prefix (another network stack, e.g. ``ip netns exec NS``): the SuperLink's.
    """

    def __init__(
        self,
        directory: Path,
        listen: str,
        superlink: str,
        tls: TlsFiles,
        prefix: Sequence[str] = (),
    ) -> None:
        self.directory = Path(directory)
        self.listen = listen
        self.prefix = tuple(prefix)
        self.values = {
            "FEEL_PROXY_LISTEN": listen,
            "FEEL_SUPERLINK": superlink,
            "FEEL_TLS_CERT": str(tls.server_cert),
            "FEEL_TLS_KEY": str(tls.server_key),
            "FEEL_TLS_CA": str(tls.ca_cert),
        }
        self.process: subprocess.Popen | None = None

    def write_config(self) -> Path:
        """Write the main configuration and the rendered template; return the main one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "fleet-proxy.conf").write_text(render(self.values))
        main = self.directory / "nginx.conf"
        main.write_text(_MAIN.format(directory=self.directory))
        return main

    def command(self, config: Path) -> list[str]:
        """Return the nginx command line: in the foreground, its files in :attr:`directory`.

        Raises
        ------
        NginxMissingError
            If nginx is not on PATH or in /usr/sbin.
        """
        nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
        if nginx is None:
            raise NginxMissingError("nginx not found: install it (Debian: nginx-light)")
        return [
            nginx, "-p", str(self.directory), "-c", str(config),
            "-e", str(self.directory / "error.log"), "-g", "daemon off;",
        ]  # fmt: skip

    def start(self) -> None:
        """Check the configuration (``nginx -t``), start nginx and wait until it listens.

        Raises
        ------
        RuntimeError
            If the configuration is refused, or nginx exits or does not listen within
            ``STARTUP_TIMEOUT_S``.
        """
        command = self.command(self.write_config())
        checked = subprocess.run(
            [*self.prefix, *command, "-t"], capture_output=True, text=True, check=False
        )
        if checked.returncode != 0:
            raise RuntimeError(f"nginx refused its configuration: {checked.stderr.strip()}")
        self.process = subprocess.Popen(
            [*self.prefix, *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _listening(self.process.pid, int(self.listen.rpartition(":")[2])):
            if self.process.poll() is not None:
                error = (self.directory / "error.log").read_text(errors="replace").strip()
                raise RuntimeError(f"nginx exited with code {self.process.returncode}: {error}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx not started after {STARTUP_TIMEOUT_S:.0f} s")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop nginx (master and worker) if it runs."""
        if self.process is not None and self.process.poll() is None:
            kill_trees([self.process])
