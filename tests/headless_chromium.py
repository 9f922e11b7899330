"""Open a page in a real headless Chromium and report what a reader would see: console errors, whether each
image loaded, and a full-page screenshot.

Talks the DevTools protocol over `--remote-debugging-pipe` (NUL-separated JSON on file descriptors 3 and 4),
so it needs nothing but the browser: Debian's `chromium` package (`apt-get install -y chromium`).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
IMAGES_JS = ("JSON.stringify(Array.from(document.images).map(i => ({src: i.getAttribute('src'), "
             "loaded: i.complete && i.naturalWidth > 0, width: i.getBoundingClientRect().width, "
             "height: i.getBoundingClientRect().height})))")


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


@dataclass
class PageCheck:
    console_errors: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    screenshot: Path | None = None


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends sit above fd 4, so moving them onto 3 and 4 in the child never closes one of them."""
    ends = []
    for fd in os.pipe():
        ends.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    return ends[0], ends[1]


class _Pipe:
    """One DevTools connection: commands out on one pipe, answers and events back on the other."""

    def __init__(self, browser: str, width: int, height: int, profile: str):
        to_browser_r, self._to_browser = _high_pipe()
        self._from_browser, from_browser_w = _high_pipe()

        args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                "--no-first-run", "--no-default-browser-check", f"--user-data-dir={profile}",
                f"--window-size={width},{height}", "--hide-scrollbars", "about:blank"]
        # The browser reads commands on fd 3 and writes answers on fd 4: the shell moves our pipe ends there
        # (bash: dash takes single-digit descriptors only, and our ends sit above 9).
        wiring = f'exec 3<&{to_browser_r} 4>&{from_browser_w} {to_browser_r}<&- {from_browser_w}>&-; exec "$@"'
        self.proc = subprocess.Popen(["bash", "-c", wiring, "bash", *args], pass_fds=(to_browser_r, from_browser_w),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self.events: Queue[dict[str, Any]] = Queue()
        self._answers: dict[int, Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        while True:
            chunk = os.read(self._from_browser, 65536)
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._lock:
                        self._answers.setdefault(message["id"], Queue()).put(message)
                else:
                    self.events.put(message)

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            box = self._answers.setdefault(ident, Queue())
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        answer = box.get(timeout=timeout)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (RuntimeError, Empty, OSError):
            pass  # the browser may be gone already; it is killed below either way
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._to_browser)


def _console_error(event: dict[str, Any]) -> str | None:
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        return " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
    if method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        return details.get("exception", {}).get("description") or details.get("text", "exception")
    if method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        entry = params["entry"]
        return f"{entry.get('text')} ({entry.get('url', '')})"
    return None


def check_page(path: Path, screenshot: Path, *, width: int = 1280, height: int = 900,
               timeout: float = 60.0) -> PageCheck:
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError("no Chromium found (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="selfaware-chromium-") as profile:
        pipe = _Pipe(browser, width, height, profile)
        try:
            targets = pipe.call("Target.getTargets")["targetInfos"]
            page = next(t for t in targets if t["type"] == "page")
            session = pipe.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                pipe.call(f"{domain}.enable", session=session)
            pipe.call("Page.navigate", {"url": path.resolve().as_uri()}, session=session)
            result = PageCheck()
            deadline = time.monotonic() + timeout
            loaded = False
            while not loaded:
                event = pipe.events.get(timeout=max(0.1, deadline - time.monotonic()))
                loaded = event.get("method") == "Page.loadEventFired"
                if (error := _console_error(event)) is not None:
                    result.console_errors.append(error)
            time.sleep(0.3)  # late console messages (after load) still count
            while not pipe.events.empty():
                if (error := _console_error(pipe.events.get())) is not None:
                    result.console_errors.append(error)
            images = pipe.call("Runtime.evaluate", {"expression": IMAGES_JS, "returnByValue": True}, session=session)
            result.images = json.loads(images["result"]["value"])
            size = pipe.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
            shot = pipe.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                        "clip": {"x": 0, "y": 0, "width": size["width"],
                                                                 "height": size["height"], "scale": 1}},
                             session=session, timeout=timeout)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            result.screenshot = screenshot
            return result
        finally:
            pipe.close()
