"""Load a page in headless Chromium and report what its console said, over the DevTools protocol.

Chromium's ``--enable-logging`` prints console messages at one level whatever their kind and
leaves out failed loads, so the page is driven over the DevTools protocol instead: console
calls (``Runtime.consoleAPICalled``), uncaught exceptions (``Runtime.exceptionThrown``) and
the browser's own log (``Log.entryAdded``: failed loads, Content-Security-Policy refusals).
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from websockets.sync.client import connect

CHROMIUM = shutil.which("chromium")
ERROR_KINDS = {"error", "assert"}


@dataclass
class PageLoad:
    """What loading a page gave: its console errors and the value of a probe expression."""

    errors: list[str] = field(default_factory=list)
    probe: object = None


def _port(profile: Path, process: subprocess.Popen, timeout_s: float) -> int:
    """Wait for Chromium's DevTools port (written to the profile as it listens)."""
    deadline = time.monotonic() + timeout_s
    active = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if active.exists() and (lines := active.read_text().splitlines()):
            return int(lines[0])
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode}")
        time.sleep(0.05)
    raise TimeoutError("chromium did not open its DevTools port")


def _error(message: dict) -> str | None:
    """The text of an error event of the protocol, None for any other message."""
    method, params = message.get("method"), message.get("params", {})
    if method == "Runtime.consoleAPICalled" and params["type"] in ERROR_KINDS:
        args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
        return f"console.{params['type']}: {args}"
    if method == "Runtime.exceptionThrown":
        details = params["exceptionDetails"]
        return f"exception: {details.get('exception', {}).get('description', details['text'])}"
    if method == "Log.entryAdded" and params["entry"]["level"] == "error":
        entry = params["entry"]
        return f"log ({entry['source']}): {entry['text']} {entry.get('url', '')}".rstrip()
    return None


class _Session:
    """Commands and events of one page target, collecting every error event seen."""

    def __init__(self, socket, timeout_s: float) -> None:
        self.socket, self.timeout_s = socket, timeout_s
        self.errors: list[str] = []
        self.next_id = 0

    def receive(self) -> dict:
        message = json.loads(self.socket.recv(timeout=self.timeout_s))
        if (text := _error(message)) is not None:
            self.errors.append(text)
        return message

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while (message := self.receive()).get("id") != self.next_id:
            pass
        if "error" in message:
            raise RuntimeError(f"{method}: {message['error']}")
        return message["result"]

    def wait_for(self, method: str) -> None:
        while self.receive().get("method") != method:
            pass


def load_page(path: Path, probe: str = "null", timeout_s: float = 30.0) -> PageLoad:
    """Open ``path`` in headless Chromium; return its console errors and the value of ``probe``.

    ``probe`` is a JavaScript expression evaluated once the page has loaded (its images
    included); its value must be JSON.
    """
    profile = Path(tempfile.mkdtemp(prefix="chromium-"))
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               f"--user-data-dir={profile}", "--remote-debugging-port=0",
               "about:blank"]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        port = _port(profile, process, timeout_s)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout_s) as r:
            target = next(t for t in json.load(r) if t["type"] == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=None) as socket:
            session = _Session(socket, timeout_s)
            for domain in ("Runtime", "Log", "Page"):
                session.call(f"{domain}.enable")
            session.call("Page.navigate", url=Path(path).resolve().as_uri())
            session.wait_for("Page.loadEventFired")
            result = session.call("Runtime.evaluate", expression=probe, returnByValue=True)
            return PageLoad(session.errors, result["result"].get("value"))
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the browser and its renderers
        process.wait()
        shutil.rmtree(profile, ignore_errors=True)
