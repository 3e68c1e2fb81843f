"""examples/retrain_and_deploy.py end to end from a shell: a run that trains, registers the
first champion and deploys it from inside a task; a scheduled (backfilled) run that evaluates
against the champion it loads in a task, promotes the new model and redeploys blue/green."""

from __future__ import annotations

import json
import shutil
import socket
import urllib.request
from pathlib import Path

from cli_harness import Cli

EXAMPLE = Path(__file__).parents[3] / "examples" / "retrain_and_deploy.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ask(url: str, rows: list[dict[str, float]]) -> tuple[list[int], str]:
    body = json.dumps({"dataframe_records": rows}).encode()
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["predictions"], response.headers["X-Glasspane-Model"]


def test_retrain_evaluate_register_promote_and_redeploy_on_a_schedule(cli: Cli) -> None:
    shutil.copy(EXAMPLE, cli.workdir / "retrain_and_deploy.py")
    ref = "retrain_and_deploy.py:retrain_and_deploy"
    port = str(_free_port())
    url = f"http://127.0.0.1:{port}"
    try:
        first = cli("run", ref, "-p", "seed=1", "-p", f"port={port}", "--json")
        assert first.code == 0, first.stdout + first.stderr
        assert first.json()["output"] == url
        example = cli("models", "show", "cancer", "--json").json()[0]["input_example"]
        rows = [dict(zip(example["columns"], row, strict=True)) for row in example["data"]]
        predictions, served = _ask(url, rows)
        assert served == "cancer/1" and len(predictions) == 3

        # the nightly schedule's fire time of 2026-11-02, backfilled; min_gain=-1 promotes
        backfill = cli(
            "backfill", ref, "--cron", "0 3 * * *", "--from", "2026-11-02", "--to",
            "2026-11-02", "-p", f"port={port}", "-p", "min_gain=-1", "--json",
        )  # fmt: skip
        assert backfill.code == 0, backfill.stdout + backfill.stderr
        assert _ask(url, rows)[1] == "cancer/2"
        versions = cli("models", "show", "cancer", "--json").json()
        assert [(v["version"], v["aliases"]) for v in versions] == [(2, ["champion"]), (1, [])]
        (deployment,) = cli("deployments", "list", "--json").json()
        assert (deployment["model_version"], deployment["health"], deployment["url"]) == (
            2, "up", url,
        )  # fmt: skip
        assert deployment["run_id"] == versions[0]["run_id"]
        runs = cli("runs", "list", "--json").json()
        scheduled = next(r for r in runs if r["run_id"] == deployment["run_id"])
        assert scheduled["trigger"] == "backfill"
        assert scheduled["scheduled_for"].startswith("2026-11-02T03:00")
    finally:
        cli("deployments", "stop", "cancer-api")
