"""Take the screenshot docs/integrations.md shows: MLflow's own UI with a glasspane grid search
as one parent run and a nested child run per candidate.

Starts a real ``mlflow server`` on 127.0.0.1 (SQLite backend store, artifacts in a temporary
directory), runs ``examples/tracked_grid_search.py:grid_search`` with
``GLASSPANE_TRACKERS=mlflow``, and has Playwright drive Debian's chromium to the experiment::

    python docs/mlflow_screenshot.py docs/images
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = f"{REPO / 'examples' / 'tracked_grid_search.py'}:grid_search"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_mlflow(root: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2),
        ):
            return server
        time.sleep(0.3)
    os.killpg(server.pid, signal.SIGKILL)
    raise RuntimeError("mlflow server did not start")


def main(out: Path) -> None:
    from mlflow import MlflowClient
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as root:
        port = free_port()
        uri = f"http://127.0.0.1:{port}"
        server = start_mlflow(Path(root), port)
        try:
            env = {
                **os.environ, "GLASSPANE_HOME": str(Path(root) / "home"),
                "GLASSPANE_TRACKERS": "mlflow", "MLFLOW_TRACKING_URI": uri,
            }  # fmt: skip
            ran = subprocess.run(
                [sys.executable, "-m", "glasspane.cli.main", "run", EXAMPLE, "--json"],
                env=env, check=True, capture_output=True, text=True,
            )  # fmt: skip
            run_id = json.loads(ran.stdout)["run_id"]
            experiment = MlflowClient(uri).get_experiment_by_name("grid_search")
            assert experiment is not None
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path="/usr/bin/chromium",
                    args=["--no-sandbox", "--disable-background-networking"],
                )
                page = browser.new_page(viewport={"width": 1400, "height": 800})
                page.goto(f"{uri}/#/experiments/{experiment.experiment_id}/runs")
                for label in ("Model training", "Got it"):  # the classic runs view, no popover
                    with contextlib.suppress(Exception):
                        page.get_by_text(label, exact=True).first.click(timeout=5_000)
                with contextlib.suppress(Exception):  # the assistant's side panel
                    page.get_by_label("Close").last.click(timeout=3_000)
                page.goto(f"{uri}/#/experiments/{experiment.experiment_id}/runs")
                try:
                    page.wait_for_selector(f"text=grid_search-{run_id[:8]}", timeout=60_000)
                except Exception:
                    page.screenshot(path=str(out / "debug.png"))
                    raise
                row = page.get_by_role("row").filter(has_text=f"grid_search-{run_id[:8]}")
                row.get_by_role("button").first.click(timeout=10_000)  # unfold its children
                page.wait_for_selector("text=train[2]", timeout=30_000)
                page.wait_for_timeout(1_500)
                page.screenshot(path=str(out / "mlflow-nested-runs.png"))
                browser.close()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(20)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images"))
