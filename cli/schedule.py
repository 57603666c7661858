"""``feel schedule``: allocate batch sizes and time slots for one instance file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cli.errors import UsageError
from scheduler import Instance, InstanceError, PolicyError, get_policy, policy_names


def register(subparsers: Any) -> None:
    """Add the ``schedule`` subcommand."""
    parser = subparsers.add_parser(
        "schedule",
        help="allocate batch sizes and TDMA slots for an instance (JSON in, JSON out)",
        description="Print the allocation of INSTANCE.json as JSON on stdout.",
    )
    parser.add_argument("instance", metavar="INSTANCE.json", help="instance file ('-' for stdin)")
    parser.add_argument(
        "--policy",
        default="optimal",
        help=f"one of {', '.join(policy_names())}, or package.module:Class (default: optimal)",
    )
    parser.add_argument(
        "--equal-slots", action="store_true", help="equal slots T_f/K (online, full, random, fixed)"
    )
    parser.add_argument("--batch", type=int, help="batch size of the 'fixed' policy")
    parser.add_argument("--seed", type=int, help="seed of the 'random' policy")
    parser.add_argument("--global-batch", type=int, help="global batch of the 'equal' policy")
    parser.add_argument("--round", type=int, default=0, help="round index (seeds 'random')")
    parser.set_defaults(func=run)


def read_instance(path: str) -> Instance:
    """Read and validate an instance file; bad input raises :class:`UsageError`."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise UsageError("INSTANCE.json", f"cannot read {path!r}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError("INSTANCE.json", f"not valid JSON in {path!r}: {exc}") from None
    try:
        return Instance.from_dict(data)
    except InstanceError as exc:
        raise UsageError(exc.field, exc.message) from None


def _policy_options(args: argparse.Namespace) -> dict[str, Any]:
    """Options of the chosen policy taken from the command line."""
    options: dict[str, Any] = {}
    if args.equal_slots:
        options["equal_slots"] = True
    for key in ("batch", "seed", "global_batch"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    return options


def run(args: argparse.Namespace) -> int:
    """Schedule one instance and print the allocation."""
    instance = read_instance(args.instance)
    try:
        policy = get_policy(args.policy, **_policy_options(args))
        allocation = policy.allocate(instance, round_index=args.round)
    except PolicyError as exc:
        raise UsageError("--policy", str(exc).removeprefix("policy: ")) from None
    except ValueError as exc:  # a policy option out of the instance's bounds: "batch: ..."
        option, _, message = str(exc).partition(": ")
        raise UsageError("--" + option.replace("_", "-"), message) from None
    json.dump(allocation.to_dict(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
