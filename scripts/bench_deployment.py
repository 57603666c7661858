"""Wall time per round of `feel deploy-local`, and where it goes.

Usage: python scripts/bench_deployment.py [--nodes 3] [--rounds 8] [--repeats 5] [--secure]

Runs `feel deploy-local` (one SuperLink and N SuperNodes on 127.0.0.1, the digits CNN) with
the test set evaluated only after the last round, and reports from its rounds.jsonl the
median wall time of a round and of its phases, over rounds 2 to R - 1 (round 1 installs the
app on every SuperNode and asks the devices for their profiles; the last round evaluates).

Then it times the parts of one train message's ClientApp process, each in fresh processes
started as a SuperNode starts them (median of --repeats):
- `interpreter + flwr-clientapp`: Python and the imports of Flower's `flwr-clientapp`;
- `ClientApp imports`: our ClientApp module;
- `train message`: handling one train message of round 2 or later (torch imported, the digits
  CNN's gradient, the device's examples read from its on-disk shard and its profile from the
  context, as in deployment).
What a round takes beyond them is Flower's own waiting: the SuperNode sleeps 3 s when it finds
no message (it looks for the next one right after sending its reply), polls for the reply
every 0.5 s, and the SuperExec polls for tasks every 0.1 s (deploy-local's setting).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FEEL = Path(sys.executable).parent / "feel"

# One train message handled in a fresh process: prints the seconds of its parts as JSON.
_CLIENTAPP_PARTS = """
import json, sys, time
started = time.perf_counter()
from flwr.supernode.cli import flwr_clientapp  # what the flwr-clientapp script imports
flower = time.perf_counter()
from client.app import app
ours = time.perf_counter()
import numpy as np
from flwr.app import ConfigRecord, Message, RecordDict
from server.inprocess import InProcessGrid
from task.arrays import array_record
with np.load(sys.argv[1]) as saved:  # the model as the message brings it, without torch
    arrays = array_record({name: saved[name] for name in saved.files})
grid = InProcessGrid(app, 3, {"device": "cpu"})  # before any Message: it sets the run
# The profile the first query worked out, as the SuperNode keeps it in the context.
grid.contexts[1000].state["profile"] = ConfigRecord(json.loads(sys.argv[2]))
message = Message(
    RecordDict({"arrays": arrays, "config": ConfigRecord(
        {"server-round": 2, "batch-size": 64, "profile-round": 3})}),
    dst_node_id=1000, message_type="train")
built = time.perf_counter()
(reply,) = grid.send_and_receive([message])
assert not reply.has_error(), reply.error.reason
done = time.perf_counter()
print(json.dumps({"interpreter + flwr-clientapp": flower - started,
                  "ClientApp imports": ours - flower, "train message": done - built}))
"""


def deploy(nodes: int, rounds: int, secure: bool, directory: Path) -> list[dict]:
    """Run `feel deploy-local` and return its rounds.jsonl rows."""
    command = [
        str(FEEL), "deploy-local", "--nodes", str(nodes), "--rounds", str(rounds),
        "--eval-every", str(rounds), "--device", "cpu", "--results-dir", str(directory),
    ]  # fmt: skip
    if secure:
        command.append("--secure")
    subprocess.run(command, check=True, cwd=directory.parent, stdout=subprocess.DEVNULL)
    rows = (directory / "rounds.jsonl").read_text().splitlines()
    return [json.loads(row) for row in rows]


def round_medians(rows: list[dict]) -> dict[str, float]:
    """Return the median round wall time and phase times of rows 2 to R - 1."""
    timed = rows[1:-1]
    medians = {"round": statistics.median(r["round_wall_time_s"] for r in timed)}
    for phase in timed[0]["wall_phases_s"]:
        medians[phase] = statistics.median(r["wall_phases_s"][phase] for r in timed)
    return medians


def device_files(scratch: Path) -> list[str]:
    """Return the arguments of the timed process: the model it brings, the device's profile.

    A digits CNN's initial state (an .npz file) and device 0's profile (JSON) as the round-1
    query worked it out.
    """
    import numpy as np

    from client.local import Node, new_model, profile
    from task.config import resolve_run_config

    config = resolve_run_config({"device": "cpu"})
    state = new_model(config).state_dict()
    np.savez(scratch / "model.npz", **{name: tensor.numpy() for name, tensor in state.items()})
    return [str(scratch / "model.npz"), json.dumps(profile(Node(0, 3, config, {}), 1))]


def clientapp_parts(repeats: int, scratch: Path) -> dict[str, float]:
    """Return the median seconds of each part of a train message's fresh ClientApp process."""
    env = {"FEEL_CACHE_DIR": str(scratch / "cache"), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", _CLIENTAPP_PARTS, *device_files(scratch)]
    subprocess.run(command, check=True, env=env, capture_output=True)  # writes the shard
    runs = [
        json.loads(subprocess.run(command, check=True, env=env, capture_output=True).stdout)
        for _ in range(repeats)
    ]
    return {part: statistics.median(run[part] for run in runs) for part in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--secure", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-deploy-") as scratch:
        started = time.monotonic()
        rows = deploy(args.nodes, args.rounds, args.secure, Path(scratch) / "run")
        wall = time.monotonic() - started
        medians = round_medians(rows)
        parts = clientapp_parts(args.repeats, Path(scratch))
    print(f"feel deploy-local --nodes {args.nodes}: {args.rounds} rounds in {wall:.0f} s")
    print(f"median of rounds 2-{args.rounds - 1}:")
    for name, seconds in medians.items():
        print(f"  {name:<12} {seconds:6.2f} s")
    print(f"one train message's fresh ClientApp process (median of {args.repeats}):")
    for name, seconds in parts.items():
        print(f"  {name:<30} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
