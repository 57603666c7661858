"""Separate network stacks on this machine: network namespaces joined by a bridge.

Each host is a network namespace of its own, with ``lo`` up and an ``eth0`` on one /24
subnet: one end of a veth pair whose other end is a port of a Linux bridge, which lives in a
namespace of its own too. Everything is made inside the namespaces (``ip -n``, ``ip link ...
netns``), so the root network namespace is never touched; the namespaces' names start with
a prefix unique to each network. Cutting a host's link sets its bridge port down, as pulling
its cable would: the host sees its carrier go and its packets are lost. Leaving deletes the
namespaces, which deletes their interfaces. Needs root and iproute2.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from types import TracebackType

SUBNET = "10.231.64"  # a /24 that exists only inside the namespaces
BRIDGE = "br0"
FIRST_HOST = 1
FIRST_EXTRA = 101  # host numbers of further addresses (add_address)


def ip(*args: str) -> subprocess.CompletedProcess:
    """Run ``ip *args``; raise ``CalledProcessError`` (with its stderr) if it fails."""
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True)


def unavailable() -> str | None:
    """Return why network namespaces cannot be made here, or None if they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "network namespaces need iproute2 (the ip command)"
    probe = f"feel-probe-{uuid.uuid4().hex[:8]}"
    try:
        ip("netns", "add", probe)
    except subprocess.CalledProcessError as exc:
        return f"ip netns add failed: {exc.stderr.strip()}"
    ip("netns", "delete", probe)
    return None


class Network:
    """Context manager: one namespace per host, all on ``SUBNET.0/24`` through a bridge.

    Parameters
    ----------
    hosts
        Host names, e.g. ``["superlink", "node-0"]``; host *i* gets ``SUBNET.<i + 1>``.
    """

    def __init__(self, hosts: Sequence[str]) -> None:
        self.prefix = f"feel-{uuid.uuid4().hex[:8]}"
        self.addresses = {h: f"{SUBNET}.{FIRST_HOST + i}" for i, h in enumerate(hosts)}
        self._ports = {h: f"p{i}" for i, h in enumerate(hosts)}  # bridge ports, <= 15 chars
        self._extra = FIRST_EXTRA
        self._made: list[str] = []

    def namespace(self, host: str) -> str:
        """Return the name of ``host``'s namespace (``bridge`` for the bridge's)."""
        return f"{self.prefix}-{host}"

    def exec(self, host: str) -> list[str]:
        """Return the command prefix that runs a command on ``host``."""
        return ["ip", "netns", "exec", self.namespace(host)]

    def __enter__(self) -> Network:
        """Make the bridge, then every host; undo all if a step fails."""
        try:
            bridge = self._add_namespace("bridge")
            ip("-n", bridge, "link", "add", "name", BRIDGE, "type", "bridge")
            ip("-n", bridge, "link", "set", BRIDGE, "up")
            for host in self.addresses:
                self._add_host(host)
        except BaseException:
            self.delete()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Delete every namespace made."""
        self.delete()

    def _add_namespace(self, host: str) -> str:
        name = self.namespace(host)
        ip("netns", "add", name)
        self._made.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        return name

    def _add_host(self, host: str) -> None:
        """Make ``host``'s namespace and its ``eth0``, plugged into the bridge."""
        name, bridge, port = self._add_namespace(host), self.namespace("bridge"), self._ports[host]
        ip("-n", bridge, "link", "add", "name", port, "type", "veth",
           "peer", "name", "eth0", "netns", name)  # fmt: skip
        ip("-n", bridge, "link", "set", port, "master", BRIDGE, "up")
        ip("-n", name, "addr", "add", f"{self.addresses[host]}/24", "dev", "eth0")
        ip("-n", name, "link", "set", "eth0", "up")

    def add_address(self, host: str) -> str:
        """Give ``host`` one more address on the subnet; return it."""
        address = f"{SUBNET}.{self._extra}"
        self._extra += 1
        ip("-n", self.namespace(host), "addr", "add", f"{address}/24", "dev", "eth0")
        return address

    def cut(self, host: str) -> None:
        """Cut ``host``'s link: set its bridge port down."""
        ip("-n", self.namespace("bridge"), "link", "set", self._ports[host], "down")

    def restore(self, host: str) -> None:
        """Bring ``host``'s link back up."""
        ip("-n", self.namespace("bridge"), "link", "set", self._ports[host], "up")

    def delete(self) -> None:
        """Delete the namespaces made so far (their interfaces go with them)."""
        while self._made:
            subprocess.run(["ip", "netns", "delete", self._made.pop()], capture_output=True)

    def left(self) -> list[str]:
        """Return this network's namespaces that ``ip netns list`` still shows."""
        listing = ip("netns", "list").stdout.split("\n")
        return [line.split()[0] for line in listing if line.startswith(self.prefix)]
