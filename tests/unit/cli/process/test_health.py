"""The SuperLink health check, asked directly and through a command prefix."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cli.process.superlink import free_ports, healthy


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_health_is_the_same_directly_and_through_a_prefix():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert healthy(port) and healthy(port, prefix=["env"])
    finally:
        server.shutdown()
        server.server_close()
    closed = free_ports(1)[0]
    assert not healthy(closed) and not healthy(closed, prefix=["env"])
