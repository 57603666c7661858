"""``feel simulate --ray-address``: a cluster that does not answer fails up front, in one line."""

import socket

import pytest
from support.usage import fails_up_front

from cli.process import ray_cluster
from cli.process.ray_cluster import ray_address
from cli.process.superlink import LocalSuperLink, free_ports


@pytest.fixture
def closed_port():
    (port,) = free_ports(1)
    return port


def test_an_address_that_refuses_fails_naming_the_option_and_value(tmp_path, capsys, closed_port):
    message = fails_up_front(["--ray-address", f"127.0.0.1:{closed_port}"], tmp_path, capsys)
    assert message.startswith(
        f"--ray-address: cannot reach a Ray cluster at '127.0.0.1:{closed_port}'"
    )
    assert "refused" in message


def test_ray_address_of_the_environment_is_checked_too(tmp_path, capsys, closed_port, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{closed_port}")
    message = fails_up_front([], tmp_path, capsys)
    assert message.startswith(
        f"RAY_ADDRESS: cannot reach a Ray cluster at '127.0.0.1:{closed_port}'"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ray://head:10001", "--ray-address: 'ray://head:10001' is a Ray Client address"),
        ("head", "--ray-address: 'head': Invalid address format: head"),
        ("head:port", "--ray-address: 'head:port' is not HOST:PORT"),
        ("127.0.0.1:70000", "--ray-address: '127.0.0.1:70000' is not HOST:PORT"),
        ("no-such-host.invalid:6379", "--ray-address: cannot reach a Ray cluster at 'no-such-host"),
    ],
)
def test_a_malformed_or_unknown_address_fails(value, message, tmp_path, capsys):
    assert fails_up_front(["--ray-address", value], tmp_path, capsys).startswith(message)


def test_a_port_that_is_not_a_ray_gcs_fails_within_the_health_check(monkeypatch):
    monkeypatch.setattr(ray_cluster, "HEALTH_CHECK_TIMEOUT_S", 1.0)
    with socket.create_server(("", 0)) as server:  # Ray resolves 127.0.0.1 to the host's IP
        port = server.getsockname()[1]
        with pytest.raises(
            ray_cluster.UsageError, match=r"no Ray cluster answered at \S+ within 1 s"
        ):
            ray_address(f"127.0.0.1:{port}")


@pytest.mark.parametrize("environment", [None, "", "local"])
def test_without_an_address_the_run_keeps_a_private_ray(environment, monkeypatch, tmp_path):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if environment is not None:
        monkeypatch.setenv("RAY_ADDRESS", environment)
    assert ray_address(None) == "local" == ray_address("local")
    link = LocalSuperLink(tmp_path / "superlink.log")
    assert link.env["RAY_ADDRESS"] == "local"  # a `ray start --head` on the host is not used
    assert LocalSuperLink(tmp_path / "s.log", "10.0.0.1:6379").env["RAY_ADDRESS"] == "10.0.0.1:6379"
