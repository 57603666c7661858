"""A Flower deployment on this machine: one SuperLink and N SuperNodes, on 127.0.0.1 by default.

The SuperLink runs in deployment mode (no ``--simulation``): ``--insecure``, or TLS with a
CA and server certificate made for the run plus SuperNode authentication (each node's key
registered with ``flwr supernode register``). A secure deployment has the topology of a real
edge server: the SuperLink listens on loopback, where ``flwr`` reaches it, and the devices
dial nginx, which forwards only the Fleet API (:mod:`cli.process.fleet_proxy`). Every
SuperNode has its own Runtime API port, node config (a TOML file) and FLWR_HOME, as a device
host would; runtime dependency installation stays off on both sides (Flower 1.42 notes,
Sec. 3). Every process is started in a session of its own and stopped by PID with its whole
process tree.

Each process can be started through a command prefix, such as ``ip netns exec NS``, with
the SuperLink at another address than 127.0.0.1: that is how the tests put the SuperLink and
every SuperNode in a network stack of its own (``tests/support/netns.py``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from cli.process.credentials import (
    LOOPBACK,
    NodeKey,
    TlsFiles,
    make_node_key,
    make_tls_files,
)
from cli.process.fleet_proxy import FleetProxy
from cli.process.superlink import LocalSuperLink, executable, free_ports, healthy, kill_trees
from client.shard import CACHE_ENV

ONLINE_TIMEOUT_S = 90.0
# The file of a secure deployment's node-partitions map (run config): each registered
# node id, as Flower gave it, with the partition its node config names.
NODE_PARTITIONS_FILE = "node-partitions.json"
POLL_S = 0.5
# Seconds between a SuperExec's polls for tasks (Flower's default is 1 s): a message waits
# for one poll before its ClientApp process starts. Read by every SuperExec at its start.
SUPEREXEC_POLL_S = 0.1
SUPEREXEC_POLL_ENV = "FLWR_SUPEREXEC_TASK_POLL_INTERVAL"


@dataclass
class SuperNode:
    """One SuperNode of the deployment.

    Attributes
    ----------
    index
        Position in :attr:`LocalDeployment.nodes`.
    port
        Its Runtime API port on 127.0.0.1, chosen each time it is started (0 before).
    superlink
        The SuperLink address it dials, ``HOST:PORT``.
    config_file
        Its node config, a TOML file.
    partition_id
        The partition its node config names.
    log_file
        Where its output goes.
    key
        Its authentication key pair (secure deployments only).
    prefix
        The command prefix it is started with (e.g. ``ip netns exec NS``); none by default.
    process
        The running ``flower-supernode``, if started.
    """

    index: int
    port: int
    superlink: str
    config_file: Path
    log_file: Path
    partition_id: int
    key: NodeKey | None = None
    prefix: tuple[str, ...] = ()
    process: subprocess.Popen | None = None


class LocalDeployment(LocalSuperLink):
    """Context manager: a deployment SuperLink and SuperNodes, on loopback by default.

    Entering starts the SuperLink, writes the ``flwr`` connection to its FLWR_HOME, registers
    the node keys (secure) and pins each registered node to its partition
    (:data:`NODE_PARTITIONS_FILE`), starts every SuperNode and waits until all are online. Leaving
    stops the SuperNodes, then the SuperLink, and deletes FLWR_HOME with the credentials.

    Parameters
    ----------
    directory
        Where the logs and node configs go (the results directory).
    node_configs
        One node config per SuperNode (``partition-id``, ``num-partitions``, ...).
    secure
        TLS and SuperNode authentication instead of ``--insecure``, the devices' requests
        through the Fleet proxy.
    host
        The server's IP address, which SuperNodes dial and its certificate names. At any
        other than 127.0.0.1, what SuperNodes dial listens on all the host's addresses
        (``0.0.0.0``), as on an edge server: the proxy, or an insecure SuperLink.
    prefix
        Command prefix of the SuperLink and ``flwr`` (see ``LocalSuperLink``).
    """

    connection = "deployment"

    def __init__(
        self,
        directory: Path,
        node_configs: Sequence[Mapping[str, Any]],
        secure: bool = False,
        host: str = LOOPBACK,
        prefix: Sequence[str] = (),
    ) -> None:
        super().__init__(directory / "superlink.log", prefix=prefix)
        self.env[SUPEREXEC_POLL_ENV] = str(SUPEREXEC_POLL_S)
        self.directory = Path(directory)
        self.host = host
        self.tls: TlsFiles | None = make_tls_files(self.home / "tls", host) if secure else None
        self.proxy: FleetProxy | None = None
        if self.tls is not None:
            listen = f"{host if host == LOOPBACK else '0.0.0.0'}:{free_ports(1)[0]}"
            link = f"{LOOPBACK}:{self.http_port}"
            self.proxy = FleetProxy(self.directory / "fleet-proxy", listen, link, self.tls, prefix)
        self.nodes: list[SuperNode] = []
        for config in node_configs:
            self.add_node(config)

    @property
    def port(self) -> int:
        """The port SuperNodes dial: the proxy's, or an insecure SuperLink's."""
        if self.proxy is None:
            return self.http_port
        return int(self.proxy.listen.rpartition(":")[2])

    @property
    def address(self) -> str:
        """What SuperNodes dial, ``<host>:<port>``."""
        return f"{self.host}:{self.port}"

    def add_node(
        self,
        node_config: Mapping[str, Any],
        prefix: Sequence[str] = (),
        superlink: str | None = None,
    ) -> SuperNode:
        """Add a SuperNode (not started, not registered) with its own key.

        It is started through the command ``prefix`` and dials ``superlink`` (default: the
        SuperLink's :attr:`address`).
        """
        index = len(self.nodes)
        node = SuperNode(
            index=index,
            port=0,
            superlink=superlink or self.address,
            prefix=tuple(prefix),
            config_file=self.directory / f"node-{index}.toml",
            log_file=self.directory / f"supernode-{index}.log",
            partition_id=int(node_config["partition-id"]),
            key=make_node_key(self.home / "keys", f"node-{index}") if self.tls else None,
        )
        node.config_file.parent.mkdir(parents=True, exist_ok=True)
        node.config_file.write_text(tomli_w.dumps(dict(node_config)))
        self.nodes.append(node)
        return node

    def command(self) -> list[str]:
        """Return the ``flower-superlink`` command line (deployment mode).

        Its state stays in memory (no ``--database``): the deployment serves one run and is
        gone afterwards, and SQLite's writes on every message add to each round (see
        docs/performance.md).
        """
        if self.tls is None:
            security = ["--insecure"]
        else:
            security = [
                f"--ssl-ca-certfile={self.tls.ca_cert}",
                f"--ssl-certfile={self.tls.server_cert}",
                f"--ssl-keyfile={self.tls.server_key}",
                "--enable-supernode-auth",
            ]
        return [
            executable("flower-superlink"),
            *security,
            f"--host={'0.0.0.0' if self.proxy is None and self.host != LOOPBACK else LOOPBACK}",
            f"--port={self.http_port}",
            "--disable-runtime-dependency-installation",
            f"--log-file={self.log_file}",
        ]

    def healthy(self) -> bool:
        """Return whether the SuperLink answers its health endpoint (over TLS if secure)."""
        cafile = None if self.tls is None else self.tls.ca_cert
        return healthy(self.http_port, cafile, self.prefix)

    def start(self) -> None:
        """Start the SuperLink, point ``flwr`` at it, start the SuperNodes, wait for them.

        Raises
        ------
        RuntimeError
            If a process exits early, a key is not registered, or the SuperNodes are not all
            online within ``ONLINE_TIMEOUT_S``.
        """
        super().start()
        if self.proxy is not None:
            self.proxy.start()
        self._write_connection()
        pins = {}
        for node in self.nodes:
            if node.key is not None:
                pins[self.register(node.key)] = node.partition_id
            self.start_node(node.index)
        if pins:
            (self.directory / NODE_PARTITIONS_FILE).write_text(json.dumps(pins))
        self.wait_online(len(self.nodes))

    def _write_connection(self) -> None:
        """Write the Flower config file: the connection to this SuperLink, as the default.

        ``flwr`` runs on the server: it dials the SuperLink's loopback port when the devices
        go through the proxy.
        """
        link = self.address if self.proxy is None else f"{LOOPBACK}:{self.http_port}"
        entry: dict[str, Any] = {"address": link}
        if self.tls is None:
            entry["insecure"] = True
        else:
            entry["root-certificates"] = str(self.tls.ca_cert)
        config = {"superlink": {"default": self.connection, self.connection: entry}}
        (self.home / "config.toml").write_text(tomli_w.dumps(config))

    def _flwr_json(self, *args: str) -> dict[str, Any]:
        """Run ``flwr *args --format json`` against this SuperLink and return its answer."""
        out, _ = self.flwr(*args, "--format", "json", stdout=subprocess.PIPE).communicate(
            timeout=60
        )
        try:
            return json.loads(out)
        except json.JSONDecodeError:
            return {"success": False, "error-message": out.decode(errors="replace")}

    def register(self, key: NodeKey) -> int:
        """Register a SuperNode's public key with ``flwr supernode register``; return its node id.

        Raises
        ------
        RuntimeError
            If Flower does not confirm the registration.
        """
        reply = self._flwr_json("supernode", "register", str(key.public), self.connection)
        if not reply.get("success") or type(reply.get("node-id")) is not int:
            raise RuntimeError(f"registering {key.public} failed: {reply}")
        return reply["node-id"]

    def online_nodes(self) -> int:
        """Return how many SuperNodes the SuperLink lists as online."""
        nodes = self._flwr_json("supernode", "ls", self.connection).get("nodes", [])
        return sum(node.get("status") == "online" for node in nodes)

    def node_command(self, node: SuperNode) -> list[str]:
        """Return the ``flower-supernode`` command line of ``node``."""
        if self.tls is None:
            security = ["--insecure"]
        else:
            security = [f"--root-certificates={self.tls.ca_cert}"]
            if node.key is not None:
                security.append(f"--auth-supernode-private-key={node.key.private}")
        return [
            executable("flower-supernode"),
            *security,
            f"--superlink={node.superlink}",
            "--host=127.0.0.1",
            f"--port={node.port}",
            f"--node-config={node.config_file}",
        ]

    def start_node(self, index: int) -> subprocess.Popen:
        """Start SuperNode ``index`` through its prefix, own session, own FLWR_HOME, a free port.

        Its ClientApp processes keep the device's examples in that home
        (:mod:`client.shard`), as a device host keeps its own data.
        """
        node = self.nodes[index]
        # Chosen now: a port found free earlier may since be an outgoing connection's.
        node.port = free_ports(1)[0]
        home = self.home / f"supernode-{index}"
        home.mkdir(parents=True, exist_ok=True)
        with node.log_file.open("a") as log:
            node.process = subprocess.Popen(
                [*node.prefix, *self.node_command(node)],
                cwd=home,
                env={**self.env, "FLWR_HOME": str(home), CACHE_ENV: str(home / "cache")},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return node.process

    def kill_node(self, index: int, signum: int = signal.SIGKILL) -> None:
        """Stop SuperNode ``index`` and its ClientApp processes; SIGKILL mimics a crash."""
        process = self.nodes[index].process
        if process is not None and process.poll() is None:
            kill_trees([process], signum)

    def wait_online(self, count: int, timeout: float = ONLINE_TIMEOUT_S) -> None:
        """Wait until ``count`` SuperNodes are online.

        Raises
        ------
        RuntimeError
            If a SuperNode exits, or fewer than ``count`` are online after ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        while self.online_nodes() < count:
            for node in self.nodes:
                if node.process is not None and node.process.poll() is not None:
                    raise RuntimeError(
                        f"SuperNode {node.index} exited with code {node.process.returncode}; "
                        f"see {node.log_file}"
                    )
            if time.monotonic() > deadline:
                raise RuntimeError(f"fewer than {count} SuperNodes online after {timeout:.0f} s")
            time.sleep(POLL_S)

    def stop(self) -> None:
        """Stop every SuperNode's process tree, the proxy, then the SuperLink."""
        running = [n.process for n in self.nodes if n.process and n.process.poll() is None]
        kill_trees(running)
        if self.proxy is not None:
            self.proxy.stop()
        super().stop()
