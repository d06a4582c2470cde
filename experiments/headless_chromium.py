"""A small DevTools-protocol client of headless Chromium, for checking pages through the browser itself.

    with Chromium() as browser:
        page = browser.open(pathlib.Path("out/report.html"))   # waits for the load event
        page.evaluate("document.title")
        page.problems                                           # console errors, exceptions, failed loads
        page.screenshot(pathlib.Path("shot.png"))

Chromium (``$CHROMIUM`` or /usr/bin/chromium, Debian's ``chromium`` package) runs headless with a fresh
profile in a temporary folder and every background service off; the client talks to it over the
``--remote-debugging-port`` websocket (``websocket-client``), on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import time
import urllib.request
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars")


def chromium_path() -> str | None:
    """The Chromium binary: ``$CHROMIUM``, else /usr/bin/chromium, else ``chromium`` on PATH; None if none."""
    for cand in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


class Page:
    """One tab: DevTools commands, and what went wrong while it loaded (``problems``)."""

    def __init__(self, ws: Any):
        self._ws = ws
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60.0) -> dict[str, Any]:
        """A DevTools command's result (events that arrive meanwhile are kept in ``events``)."""
        k = next(self._ids)
        self._ws.send(json.dumps({"id": k, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            self._ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(self._ws.recv())
            if msg.get("id") == k:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{method}: no answer in {timeout} s")

    def wait_for(self, event: str, timeout: float = 60.0) -> dict[str, Any]:
        """Waits for the next ``event`` (or one already received)."""
        for e in self.events:
            if e["method"] == event and not e.get("_seen"):
                e["_seen"] = True
                return e
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(self._ws.recv())
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == event:
                    msg["_seen"] = True
                    return msg
        raise TimeoutError(f"no {event} in {timeout} s")

    def evaluate(self, expression: str, timeout: float = 60.0) -> Any:
        """The value of a JavaScript expression (promises awaited); RuntimeError when it throws."""
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True},
                      timeout)
        if "exceptionDetails" in r:
            raise RuntimeError(f"page script failed: {r['exceptionDetails'].get('exception', r['exceptionDetails'])}")
        return r["result"].get("value")

    @property
    def problems(self) -> list[str]:
        """Console errors, uncaught exceptions, error log entries and failed resource loads so far."""
        out = []
        for e in self.events:
            p, m = e.get("params", {}), e["method"]
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p.get('args', [])]}")
            elif m == "Runtime.exceptionThrown":
                out.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif m == "Network.loadingFailed":
                out.append(f"load failed: {p.get('errorText')} ({p.get('type')})")
            elif m == "Network.requestWillBeSent" and not p.get("request", {}).get("url", "").startswith(
                    ("file:", "data:", "about:")):
                out.append(f"request outside the disk: {p['request']['url']}")
        return out

    def screenshot(self, path: pathlib.Path, full_page: bool = True) -> None:
        """Writes a PNG of the page (whole length when ``full_page``)."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            m = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": m["width"], "height": m["height"], "scale": 1}
        data = self.send("Page.captureScreenshot", params)["data"]
        pathlib.Path(path).write_bytes(base64.b64decode(data))


class Chromium:
    """Headless Chromium with a fresh profile; a context manager (module docstring)."""

    def __init__(self, binary: str | None = None, width: int = 1280, height: int = 900):
        self.binary = binary or chromium_path()
        if self.binary is None:
            raise FileNotFoundError("no Chromium found (install Debian's chromium package or set $CHROMIUM)")
        self.size = (width, height)
        self._proc: subprocess.Popen | None = None
        self._profile: str | None = None
        self._pages: list[Any] = []

    def __enter__(self) -> "Chromium":
        self._profile = tempfile.mkdtemp(prefix="mantra-chromium-")
        cmd = [self.binary, *FLAGS, f"--user-data-dir={self._profile}", "--remote-debugging-port=0",
               "--remote-debugging-address=127.0.0.1", f"--window-size={self.size[0]},{self.size[1]}", "about:blank"]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = pathlib.Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("Chromium did not start its DevTools server")
            time.sleep(0.05)
        self.port = int(port_file.read_text().split()[0])
        return self

    def open(self, target: pathlib.Path | str, timeout: float = 60.0) -> Page:
        """A new tab showing ``target`` (a file path or a URL), after its load event."""
        import websocket

        url = pathlib.Path(target).resolve().as_uri() if isinstance(target, pathlib.Path) else str(target)
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(req, timeout=timeout) as r:
            info = json.loads(r.read())
        ws = websocket.create_connection(info["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        self._pages.append(ws)
        page = Page(ws)
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.send(f"{domain}.enable")
        page.send("Emulation.setDeviceMetricsOverride", {"width": self.size[0], "height": self.size[1],
                                                         "deviceScaleFactor": 1, "mobile": False})
        page.t_navigate = time.perf_counter()
        page.send("Page.navigate", {"url": url})
        page.wait_for("Page.loadEventFired", timeout)
        page.t_loaded = time.perf_counter()
        return page

    def __exit__(self, *exc: Any) -> None:
        for ws in self._pages:
            with contextlib.suppress(Exception):
                ws.close()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._profile:
            shutil.rmtree(self._profile, ignore_errors=True)
