"""What the browser tests share: the real `glasspane ui` / `glasspane server` command in its own
process over a home, and a page that fails the test on script injection or console errors."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def serve(home: Path, command: str = "ui") -> Iterator[str]:
    """Run ``glasspane COMMAND --port 0`` over ``home``; yield its base URL, then stop it with
    SIGTERM and check it exited 0 (a generator for a fixture)."""
    env = {**os.environ, "GLASSPANE_HOME": str(home)}
    for name in ("GLASSPANE_DATABASE_URL", "GLASSPANE_ARTIFACT_ROOT", "GLASSPANE_UI_TOKEN"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "glasspane.cli.main", command, "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        cwd=home,  # not the checkout: a glasspane.egg-info there would stand for the install
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    match = re.match(r"^glasspane UI: (http://127\.0\.0\.1:\d+)/$", line)
    assert match, (line, proc.wait(30), proc.stderr.read() if proc.stderr else "")
    yield match.group(1)
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def watched_page(browser: Any, what: str) -> Iterator[Any]:
    """A page that fails the test if a script ``what`` carries runs (an alert dialog), and on
    any console error (a CSP violation included) or error response (a generator for a
    fixture)."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    yield page
    assert not dialogs, f"script from {what} executed: alert({dialogs})"
    assert not errors, f"errors in the browser console: {errors}"
    context.close()
