"""``feel deploy-local``: train through Flower's Deployment Engine on this machine.

Starts one SuperLink and ``--nodes`` SuperNodes on 127.0.0.1 (see :mod:`cli.process.deployment`),
each SuperNode with its own port and node config: ``partition-id``, ``num-partitions`` and
any device fields given with ``--node-config`` (``cpu-hz``, ``distance-m``, ...). Then it
runs the app like ``feel simulate`` does: ``flwr run --stream``, one line per round, the
final status from ``flwr ls``, the same results directory; everything it started is stopped.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from cli.errors import UsageError
from cli.simulate import _usage, add_run_config_options, resolve_options, run_app
from task.errors import ConfigError

_NODE_CONFIG = re.compile(r"(\d+):(.*)", re.DOTALL)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``deploy-local`` subcommand; its run options mirror ``feel simulate``'s."""
    parser = subparsers.add_parser(
        "deploy-local",
        help="train through a local SuperLink and SuperNodes and write the results directory",
        description="Train with the FEEL strategy through Flower's Deployment Engine: one "
        "SuperLink and one SuperNode per device, all on 127.0.0.1; options mirror the app's "
        "run config.",
    )
    add_run_config_options(parser)
    parser.add_argument(
        "--nodes", type=int, default=3, metavar="INT", help="number of SuperNodes (default: 3)"
    )
    parser.add_argument(
        "--secure",
        action="store_true",
        help="TLS with a CA and server certificate made for the run, and SuperNode "
        "authentication with registered node keys",
    )
    parser.add_argument(
        "--node-config",
        action="append",
        default=[],
        metavar="INDEX:CONFIG",
        help="extra node config of SuperNode INDEX, e.g. 2:'cpu-hz=2.1e9 distance-m=50.0' or "
        "2:node.toml (repeatable; device fields, profile-on-start=true, data-dir, dataset, "
        "device)",
    )
    parser.set_defaults(func=run)


def node_configs(specs: list[str], num_nodes: int, config: dict[str, Any]) -> list[dict]:
    """Return the node config of every SuperNode, checked as its ClientApp will check it.

    Node ``i`` gets ``partition-id=i num-partitions=num_nodes`` and the pairs of each
    ``--node-config i:'k=v ...'`` (values in TOML syntax, as ``flower-supernode`` reads them).

    Raises
    ------
    UsageError
        For a malformed spec, an index out of range, or a key or value the ClientApp rejects.
    """
    from click import ClickException
    from flwr.common.config import parse_config_args

    from client.local import Node, device

    configs = [{"partition-id": i, "num-partitions": num_nodes} for i in range(num_nodes)]
    for spec in specs:
        match = _NODE_CONFIG.fullmatch(spec)
        if match is None or not 0 <= int(match.group(1)) < num_nodes:
            raise UsageError(
                "--node-config",
                f"expected INDEX:'key=value ...' with INDEX < {num_nodes}, got {spec!r}",
            )
        try:
            pairs = parse_config_args([match.group(2)])  # key=value pairs, or a TOML file
        except (ClickException, OSError, ValueError) as exc:
            raise UsageError("--node-config", f"{spec!r}: {exc}") from None
        if not pairs:
            raise UsageError("--node-config", f"no key=value pairs in {spec!r}")
        configs[int(match.group(1))].update(pairs)
    for index, node_config in enumerate(configs):
        try:
            device(Node.from_context(node_config, config))
        except ConfigError as exc:
            raise UsageError("--node-config", f"node {index}: {exc}") from None
    return configs


def run(args: argparse.Namespace) -> int:
    """Run the deployment; return 0 when the run completed, 1 when it failed."""
    from cli.preflight import check_simulation
    from cli.process.deployment import NODE_PARTITIONS_FILE, LocalDeployment

    if args.nodes < 1:
        raise UsageError("--nodes", f"must be >= 1, got {args.nodes}")
    config = resolve_options(args, args.nodes)
    try:
        check_simulation(config, args.nodes)
    except ConfigError as exc:
        if exc.field == "num-partitions":
            raise UsageError("--nodes", exc.message) from None
        raise _usage(exc) from None
    nodes = node_configs(args.node_config, args.nodes, config)
    if args.secure and not config["node-partitions"]:  # the map the deployment writes
        config["node-partitions"] = str(Path(config["results-dir"]) / NODE_PARTITIONS_FILE)
    return run_app(
        "feel deploy-local" + (" --secure" if args.secure else ""),
        config,
        lambda directory: LocalDeployment(directory, nodes, secure=args.secure),
    )
