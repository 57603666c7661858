"""Credentials and command lines of a local deployment (no process is started)."""

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_ssh_private_key,
    load_ssh_public_key,
)

from cli.process.credentials import make_node_key, make_tls_files
from cli.process.deployment import LocalDeployment


def test_server_certificate_is_for_loopback_and_signed_by_the_ca(tmp_path):
    files = make_tls_files(tmp_path)
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key = load_pem_private_key(files.server_key.read_bytes(), None)
    assert key.public_key() == server.public_key()
    assert files.server_key.stat().st_mode & 0o077 == 0


def test_server_certificate_also_names_the_address_supernodes_dial(tmp_path):
    files = make_tls_files(tmp_path, "10.231.64.1")
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),  # where the SuperLink's own SuperExec dials it
        ipaddress.ip_address("10.231.64.1"),
    ]


def test_node_key_is_an_openssh_p384_pair(tmp_path):
    pair = make_node_key(tmp_path, "node-0")
    private = load_ssh_private_key(pair.private.read_bytes(), None)
    public = load_ssh_public_key(pair.public.read_bytes())
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    assert isinstance(private.curve, ec.SECP384R1)
    assert private.public_key() == public
    assert pair.public.read_text().startswith("ecdsa-sha2-nistp384 ")


@pytest.mark.parametrize("secure", [False, True])
def test_commands_use_loopback_only_and_the_run_credentials(tmp_path, secure):
    deployment = LocalDeployment(tmp_path, [{"partition-id": 0, "num-partitions": 1}], secure)
    try:
        link, node = deployment.command(), deployment.node_command(deployment.nodes[0])
        assert "--host=127.0.0.1" in link and "--host=127.0.0.1" in node
        assert f"--superlink=127.0.0.1:{deployment.port}" in node
        # Secure: the SuperNodes dial the Fleet proxy, in front of the SuperLink's own port.
        assert (deployment.port != deployment.http_port) == secure
        assert "--disable-runtime-dependency-installation" in link
        assert f"--node-config={tmp_path / 'node-0.toml'}" in node
        assert (tmp_path / "node-0.toml").read_text() == "partition-id = 0\nnum-partitions = 1\n"
        if secure:
            assert "--enable-supernode-auth" in link and "--insecure" not in link + node
            assert f"--ssl-ca-certfile={deployment.tls.ca_cert}" in link
            assert f"--root-certificates={deployment.tls.ca_cert}" in node
            assert f"--auth-supernode-private-key={deployment.nodes[0].key.private}" in node
        else:
            assert "--insecure" in link and "--insecure" in node
            assert deployment.nodes[0].key is None
    finally:
        deployment.stop()
    assert not deployment.home.exists()  # credentials go with FLWR_HOME


@pytest.mark.parametrize("secure", [False, True])
def test_a_server_at_another_address_listens_on_all_and_nodes_dial_it(tmp_path, secure):
    """Insecure, the SuperLink listens on all addresses; secure, the Fleet proxy does, in the
    SuperLink's network stack, and the SuperLink stays on loopback."""
    prefix = ["ip", "netns", "exec", "link"]
    deployment = LocalDeployment(tmp_path, [], secure, host="10.231.64.1", prefix=prefix)
    try:
        config = {"partition-id": 0, "num-partitions": 1}
        node = deployment.add_node(config, ["ip", "netns", "exec", "node"])
        elsewhere = deployment.add_node(config, superlink="10.231.64.9:1")
        on_all = "--host=0.0.0.0" in deployment.command()
        assert on_all != secure and ("--host=127.0.0.1" in deployment.command()) == secure
        if secure:
            assert deployment.proxy.listen == f"0.0.0.0:{deployment.port}"
            assert deployment.proxy.prefix == tuple(prefix)
        assert deployment.prefix == tuple(prefix) and node.prefix == ("ip", "netns", "exec", "node")
        assert f"--superlink=10.231.64.1:{deployment.port}" in deployment.node_command(node)
        assert "--superlink=10.231.64.9:1" in deployment.node_command(elsewhere)
        assert elsewhere.prefix == ()
    finally:
        deployment.stop()
