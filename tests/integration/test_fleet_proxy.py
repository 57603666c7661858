"""The Fleet proxy (nginx with the repository's template) in front of a stand-in SuperLink.

The stand-in is an HTTPS server with the deployment's certificate that records each path it
is asked for, so the tests see what reaches the SuperLink and what the proxy refuses.
"""

import http.client
import http.server
import ssl
import threading
from typing import ClassVar

import pytest

from cli.process.credentials import make_tls_files
from cli.process.fleet_proxy import FleetProxy, render
from cli.process.superlink import free_ports

pytestmark = pytest.mark.security


class _Recorder(http.server.BaseHTTPRequestHandler):
    paths: ClassVar[list[str]] = []

    def _answer(self):
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        type(self).paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self._answer()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    """A running proxy on 127.0.0.1 and the recorded paths of its upstream."""
    directory = tmp_path_factory.mktemp("proxy")
    tls = make_tls_files(directory / "tls")
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.server_cert, tls.server_key)
    upstream.socket = context.wrap_socket(upstream.socket, server_side=True)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    listen = f"127.0.0.1:{free_ports(1)[0]}"
    fleet = FleetProxy(directory / "nginx", listen, f"127.0.0.1:{upstream.server_port}", tls)
    fleet.start()
    yield fleet, tls
    fleet.stop()
    upstream.shutdown()


def _connection(proxy):
    """An HTTPS connection to the proxy that trusts only the CA, as a device's would."""
    fleet, tls = proxy
    host, _, port = fleet.listen.rpartition(":")
    context = ssl.create_default_context(cafile=str(tls.ca_cert))
    return http.client.HTTPSConnection(host, int(port), context=context, timeout=10)


def _request(proxy, method, path, body=b"", connection=None):
    """Send one request through the proxy; return its status."""
    own = connection is None
    connection = _connection(proxy) if own else connection
    try:
        connection.request(method, path, body=body)
        reply = connection.getresponse()
        reply.read()
        return reply.status
    finally:
        if own:
            connection.close()


def test_fleet_routes_and_health_reach_the_superlink(proxy):
    _Recorder.paths.clear()
    assert _request(proxy, "POST", "/v1/fleet/pull-messages", b"x") == 200
    assert _request(proxy, "GET", "/health") == 200
    assert _Recorder.paths == ["/v1/fleet/pull-messages", "/health"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/control/register-node",  # registering an attacker's SuperNode key
        "/v1/control/start-run",  # running an app on the server and every device
        "/v1/control/stop-run",
        "/v1/runtime/acquire-task",  # claiming the ServerApp's task
        "/v1/fleetx/pull-messages",
        "/v1/fleet/../control/list-runs",
        "/",
    ],
)
def test_every_other_path_is_refused_before_the_superlink(proxy, path):
    _Recorder.paths.clear()
    assert _request(proxy, "POST", path, b"{}") in (400, 403) and _Recorder.paths == []


def test_a_body_over_6_mib_is_refused_unread(proxy):
    """A 256 MB upload: nginx answers 413 on the Content-Length, before any body is sent."""
    connection = _connection(proxy)
    connection.putrequest("POST", "/v1/fleet/push-object")
    connection.putheader("Content-Length", str(256 * 2**20))
    connection.endheaders()
    assert connection.getresponse().status == 413
    connection.close()
    _Recorder.paths.clear()
    assert _request(proxy, "POST", "/v1/fleet/push-object", b"x" * (5 * 2**20 + 4096)) == 200
    assert _Recorder.paths == ["/v1/fleet/push-object"]  # one array piece of 5 MiB passes


def test_a_burst_beyond_the_rate_limit_gets_429(proxy):
    """50 requests a second and bursts of 200 per device address pass; a flood does not."""
    connection = _connection(proxy)
    statuses = [
        _request(proxy, "POST", "/v1/fleet/pull-messages", b"", connection) for _ in range(400)
    ]
    connection.close()
    assert statuses[:150] == [200] * 150 and statuses.count(429) > 100


def test_the_template_names_every_value_it_needs():
    with pytest.raises(KeyError, match="FEEL_TLS_CA"):
        render({"FEEL_PROXY_LISTEN": "a", "FEEL_SUPERLINK": "b", "FEEL_TLS_CERT": "c"})
