"""The local SuperLink keeps its state private and sends nothing home."""

import os
import stat
from pathlib import Path

import pytest

from cli.process.superlink import LocalSuperLink

pytestmark = [
    pytest.mark.security,
    pytest.mark.skipif(not os.path.exists("/proc/self/environ"), reason="needs /proc"),
]


def environment(pid):
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_state_is_private_and_telemetry_and_update_checks_are_off(tmp_path):
    with LocalSuperLink(tmp_path / "superlink.log") as link:
        home, database = link.home, link.home / "state.db"
        assert database.exists()
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        assert stat.S_IMODE(database.stat().st_mode) & 0o077 == 0
        env = environment(link.process.pid)
        assert env["FLWR_TELEMETRY_ENABLED"] == "0" and env["FLWR_DISABLE_UPDATE_CHECK"] == "1"
    assert not home.exists()  # the credentials and state go with the deployment
