"""The README's certificate commands make a server certificate that the whole setup accepts."""

import ipaddress
import re
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from support.paths import ROOT

pytestmark = [
    pytest.mark.security,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl"),
]


def certificate_commands():
    """The shell block of the README's **Certificates** step."""
    text = (ROOT / "README.md").read_text()
    step = text[text.index("1. **Certificates**") :]
    return re.search(r"```bash\n(.*?)```", step, re.S).group(1)


def test_the_server_certificate_names_loopback_and_is_signed_by_the_ca(tmp_path):
    subprocess.run(["bash", "-e", "-c", certificate_commands()], cwd=tmp_path, check=True,
                   capture_output=True)  # fmt: skip
    certs = tmp_path / "certs"
    server = x509.load_pem_x509_certificate((certs / "server.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((certs / "ca.crt").read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "edge-server"} <= set(names.get_values_for_type(x509.DNSName))
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert server.issuer == ca.subject
    ca.public_key().verify(
        server.signature, server.tbs_certificate_bytes, ec.ECDSA(server.signature_hash_algorithm)
    )
