"""Wall time per round of `feel deploy-local`, and where it goes.

Usage: python scripts/bench_deployment.py [--nodes 3] [--rounds 8] [--repeats 5] [--secure]

Runs `feel deploy-local` (one SuperLink and N SuperNodes on 127.0.0.1, the digits CNN) with
the test set evaluated only after the last round, and reports from its rounds.jsonl the
median wall time of a round and of its phases, over rounds 2 to R - 1 (round 1 installs the
app on every SuperNode and asks the devices for their profiles; the last round evaluates).

While the run goes, it samples the CPU time of every process of the run (``/proc``, every
0.2 s) and reports it by program: a process of each message (``flwr-clientapp``) and the
long-lived ones (SuperLink, SuperNodes, SuperExecs, ServerApp, ``flwr``, ``feel`` itself).

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
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cli.process.orphans import with_descendants

ROOT = Path(__file__).resolve().parent.parent
FEEL = Path(sys.executable).parent / "feel"
TICKS_PER_S = os.sysconf("SC_CLK_TCK")

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


def _program(pid: int) -> str | None:
    """Return the program a process runs (a script's name), or None once it has exited."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:  # gone
        return None
    words = [Path(a.decode()).name for a in argv[:3] if a and not a.startswith(b"-")]
    scripts = [w for w in words if not w.startswith("python")]
    if not words:  # exited, not yet reaped
        return None
    return " ".join(scripts[:2]) if scripts[:1] == ["feel"] else (scripts or words)[0]


def _cpu_s(pid: int) -> float | None:
    """Return the CPU seconds of a process so far (also once exited, until reaped)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # gone
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S  # utime + stime


def deploy(
    nodes: int, rounds: int, secure: bool, directory: Path
) -> tuple[list[dict], dict[str, list[float]]]:
    """Run `feel deploy-local`; return its rounds.jsonl rows and CPU seconds by program.

    A program's list holds the CPU seconds of each of its processes.
    """
    command = [
        str(FEEL), "deploy-local", "--nodes", str(nodes), "--rounds", str(rounds),
        "--eval-every", str(rounds), "--device", "cpu", "--results-dir", str(directory),
    ]  # fmt: skip
    if secure:
        command.append("--secure")
    run = subprocess.Popen(command, cwd=directory.parent, stdout=subprocess.DEVNULL)
    programs: dict[int, str] = {}
    seconds: dict[int, float] = {}
    while run.poll() is None:
        for pid in with_descendants([run.pid]) | programs.keys():
            if pid not in programs and (program := _program(pid)) is not None:
                programs[pid] = program
            if pid in programs and (cpu_s := _cpu_s(pid)) is not None:
                seconds[pid] = cpu_s
        time.sleep(0.2)
    if run.returncode != 0:
        raise SystemExit(f"feel deploy-local failed ({run.returncode}); see {directory}")
    cpu = collections.defaultdict(list)
    for pid, cpu_s in seconds.items():
        cpu[programs[pid]].append(cpu_s)
    rows = (directory / "rounds.jsonl").read_text().splitlines()
    return [json.loads(row) for row in rows], dict(cpu)


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
        rows, cpu = deploy(args.nodes, args.rounds, args.secure, Path(scratch) / "run")
        wall = time.monotonic() - started
        medians = round_medians(rows)
        parts = clientapp_parts(args.repeats, Path(scratch))
    print(f"feel deploy-local --nodes {args.nodes}: {args.rounds} rounds in {wall:.0f} s")
    print(f"median of rounds 2-{args.rounds - 1}:")
    for name, seconds in medians.items():
        print(f"  {name:<12} {seconds:6.2f} s")
    print(f"CPU seconds of the run's processes ({os.cpu_count()} cores, whole run), by program:")
    for program, seconds in sorted(cpu.items(), key=lambda item: -sum(item[1])):
        print(
            f"  {program:<30} {len(seconds):4d} processes {sum(seconds):7.1f} s"
            f"  median {statistics.median(seconds):5.2f} s each"
        )
    print(f"one train message's fresh ClientApp process (median of {args.repeats}):")
    for name, seconds in parts.items():
        print(f"  {name:<30} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
