"""Take the screenshots docs/ui.md shows, from the example pipeline, in a real browser.

Runs ``examples/retrain.py:retrain`` three times in a fresh home (two grids, then a run that
reuses the cache), serves it with ``glasspane ui`` and has Playwright drive Debian's
chromium through the runs list, a run, a task's panel, the pipeline page and a comparison::

    python docs/ui_screenshots.py docs/images
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = f"{REPO / 'examples' / 'retrain.py'}:retrain"


def glasspane(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "glasspane.cli.main", *args],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return done.stdout


def main(out: Path) -> None:
    import json

    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "GLASSPANE_HOME": home}
        runs = [
            json.loads(glasspane(env, "run", EXAMPLE, "-p", f"grid={grid}", "--json"))["run_id"]
            for grid in ("[0.1,1]", "[0.1,1,10]", "[0.1,1,10]")
        ]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        ui = subprocess.Popen(
            [sys.executable, "-m", "glasspane.cli.main", "ui", "--port", str(port)],
            env=env, stdout=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        assert ui.stdout is not None
        ui.stdout.readline()
        base = f"http://127.0.0.1:{port}"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium")
                page = browser.new_page(viewport={"width": 1400, "height": 860})
                page.goto(base + "/")
                page.screenshot(path=str(out / "ui-runs.png"))
                page.goto(f"{base}/runs/{runs[1]}")
                page.screenshot(path=str(out / "ui-run.png"))
                page.locator("#run-graph [data-node='choose_best']").first.click()
                page.locator("#task-panel").wait_for(state="visible")
                page.wait_for_timeout(500)
                page.screenshot(path=str(out / "ui-task.png"))
                page.goto(f"{base}/runs/{runs[2]}/tasks/evaluate")
                page.screenshot(path=str(out / "ui-cache.png"))
                page.goto(f"{base}/pipelines/retrain")
                page.screenshot(path=str(out / "ui-pipeline.png"), full_page=True)
                page.goto(f"{base}/compare?runs={runs[0]},{runs[1]}")
                page.screenshot(path=str(out / "ui-compare.png"), full_page=True)
                browser.close()
        finally:
            os.killpg(ui.pid, signal.SIGTERM)
            ui.wait(timeout=30)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "images"))
