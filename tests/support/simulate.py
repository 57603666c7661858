"""``feel simulate`` as a subprocess with its own TMPDIR, and the rows it writes."""

import json
import os
import subprocess
import sys
from pathlib import Path

from server.results import WALL_KEYS
from support.paths import ROOT


def command(*argv):
    return [sys.executable, "-m", "cli.main", "simulate", *argv]


def simulate(tmpdir, *argv):
    env = {**os.environ, "TMPDIR": tmpdir}
    return subprocess.run(
        command(*argv), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def rows(directory):
    lines = (Path(directory) / "rounds.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in WALL_KEYS} for line in lines]
