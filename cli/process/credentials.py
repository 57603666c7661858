"""Credentials for a secure Flower deployment: a CA, the SuperLink's certificate, node keys.

The SuperLink serves TLS with a certificate signed by a CA made for the run; SuperNodes and
the ``flwr`` CLI trust that CA (``--root-certificates``, ``root-certificates`` in the Flower
config file). With SuperNode authentication each SuperNode signs its requests with its own
ECDSA key, whose public half is registered with ``flwr supernode register`` (Flower 1.42
notes, Sec. 3). Everything is made with ``cryptography``, which Flower already depends on.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 30
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one SuperLink's TLS setup.

    Attributes
    ----------
    ca_cert
        The CA certificate that clients trust (``--ssl-ca-certfile``, ``--root-certificates``).
    server_cert, server_key
        The SuperLink's certificate and private key (``--ssl-certfile``, ``--ssl-keyfile``).
    """

    ca_cert: Path
    server_cert: Path
    server_key: Path


@dataclass(frozen=True)
class NodeKey:
    """One SuperNode's authentication key pair in OpenSSH format.

    Attributes
    ----------
    private
        For ``flower-supernode --auth-supernode-private-key``.
    public
        For ``flwr supernode register``.
    """

    private: Path
    public: Path


def _new_key() -> ec.EllipticCurvePrivateKey:
    """Return a new ECDSA key on NIST P-384, the curve Flower's node authentication accepts."""
    return ec.generate_private_key(ec.SECP384R1())


def _write_key_pem(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    signer: ec.EllipticCurvePrivateKey,
    *,
    addresses: Sequence[str] = (),
) -> x509.Certificate:
    """Sign a certificate for ``subject``.

    ``issuer=None`` makes it a self-signed CA; otherwise it is a server certificate whose
    subject alternative names are ``localhost`` and the IP ``addresses``.
    """
    ca = issuer is None
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        names: list[x509.GeneralName] = [x509.DNSName("localhost")]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in addresses]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())


def make_tls_files(directory: Path, host: str = LOOPBACK) -> TlsFiles:
    """Write a fresh CA and a server certificate into ``directory``.

    The certificate names localhost, 127.0.0.1 (where the SuperLink's own SuperExec dials it)
    and the IP address ``host`` that SuperNodes dial.
    """
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.crt", directory / "server.pem", directory / "server.key")
    ca_key, server_key = _new_key(), _new_key()
    addresses = tuple(dict.fromkeys((LOOPBACK, host)))  # in order, once each
    ca_cert = _certificate("feel deploy-local CA", ca_key, None, ca_key)
    server_cert = _certificate(host, server_key, ca_cert.subject, ca_key, addresses=addresses)
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_key_pem(server_key, files.server_key)
    return files


def make_node_key(directory: Path, name: str) -> NodeKey:
    """Write a SuperNode key pair ``name`` and ``name.pub`` (OpenSSH, like ``ssh-keygen``)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = _new_key()
    pair = NodeKey(directory / name, directory / f"{name}.pub")
    pair.private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    pair.private.chmod(0o600)
    pair.public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
    )
    return pair
