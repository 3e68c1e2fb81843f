"""``glasspane deploy`` and ``glasspane deployments list|show|stop``: serving registered model
versions (blue/green; see :mod:`glasspane.serving`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK, EXIT_FAILED = 0, 1
DEPLOY_CODES = """exit codes:
  0    deployed: the new version serves
  1    the new version did not start or failed its checks (the old one keeps serving)
  2    a usage or configuration error, or no such model, version, alias or target (one line)
"""
CODES = """exit codes:
  0    done
  2    a usage or configuration error, or no such deployment (one line)
"""


def add_parsers(sub: Any, command: Any) -> None:
    """Add ``deploy`` and ``deployments`` (``list``, ``show``, ``stop``) to ``sub``."""
    deploy = command(
        sub, "deploy", "serve a registered model version over HTTP (blue/green)",
        description="Serve a registered model version as a named deployment, speaking MLflow's "
        "scoring protocol (/ping, /health, /version, /invocations). Deploying to a name that "
        "serves already is blue/green: the new version starts beside the old one and takes "
        "over only once it answered its health check and a sample prediction (the version's "
        "input_example); if it fails, the old one keeps serving. Targets: local (glasspane's "
        "model server, a process on this machine) and mlflow (`mlflow models serve`).",
        epilog=DEPLOY_CODES + "\nexamples:\n"
        "  glasspane deploy churn@champion --name churn-api --port 5001\n"
        "  glasspane deploy churn/3 --name churn-api\n"
        "  glasspane deploy churn@champion --target mlflow --name churn-mlflow",
    )  # fmt: skip
    deploy.add_argument("ref", help="the model version: NAME@ALIAS, NAME/VERSION or NAME (latest)")
    deploy.add_argument("--name", required=True, help="the deployment's name, e.g. churn-api")
    deploy.add_argument("--target", default="local", help="local (default) or mlflow")
    deploy.add_argument(
        "--port", type=int, help="the port clients use (default: the deployment's, or a free one)"
    )
    deploy.add_argument("--host", default="127.0.0.1", help="the address to serve on")
    group = command(
        sub, "deployments", "deployed model versions: list with live health, show, stop",
        description="Deployments made by `glasspane deploy` or glasspane.deploy() in a task: "
        "which model version each serves, where, and what happened to it.",
    )  # fmt: skip
    verbs = group.add_subparsers(
        dest="deployments_command", metavar="list|show|stop", required=True
    )
    listing = command(
        verbs, "list", "every deployment: the version it serves, its URL, health checked now",
        epilog=CODES + "\nexamples:\n  glasspane deployments list\n"
        "  glasspane deployments list --json",
    )  # fmt: skip
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show = command(
        verbs, "show", "one deployment: what it serves and its history",
        epilog=CODES + "\nexamples:\n  glasspane deployments show churn-api",
    )  # fmt: skip
    show.add_argument("name", help="the deployment's name")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    stop = command(
        verbs, "stop", "stop a deployment's server (its history stays)",
        epilog=CODES + "\nexamples:\n  glasspane deployments stop churn-api",
    )  # fmt: skip
    stop.add_argument("name", help="the deployment's name")


def main(args: argparse.Namespace) -> int:
    from .. import serving
    from ..api import default_workspace
    from ..deploying import DeployError

    ws = default_workspace()
    if args.command == "deploy":
        try:
            done = serving.deploy(
                args.ref, name=args.name, target=args.target, port=args.port, host=args.host,
                workspace=ws,
            )  # fmt: skip
        except DeployError as exc:
            sys.stderr.write(f"glasspane: error: {exc}\n")
            return EXIT_FAILED
        was = "" if done.replaced is None else f" (replacing version {done.replaced})"
        print(
            f"deployed {done.model_name}/{done.model_version} as {done.name} on {done.target}: "
            f"{done.url}{was}"
        )
        return EXIT_OK
    if args.deployments_command == "stop":
        row = serving.stop_deployment(args.name, workspace=ws)
        print(f"stopped {args.name} ({row['model_name']}/{row['model_version']} at {row['url']})")
        return EXIT_OK
    if args.deployments_command == "show":
        return _show(ws, args.name, args.json)
    return _list(serving.deployments(workspace=ws), args.json)


def _list(rows: list[dict[str, Any]], as_json: bool) -> int:
    if as_json:
        print(json.dumps(rows, default=str, indent=2))
        return EXIT_OK
    if not rows:
        print("no deployment yet: glasspane deploy MODEL@ALIAS --name NAME")
        return EXIT_OK
    print(f"{'NAME':<20} {'TARGET':<7} {'MODEL':<22} {'HEALTH':<8} URL")
    for row in rows:
        model = f"{row['model_name']}/{row['model_version']}"
        health = row["health"]
        detail = f"  ({row['health_detail']})" if health == "down" else ""
        print(f"{row['name']:<20} {row['target']:<7} {model:<22} {health:<8} {row['url']}{detail}")
    return EXIT_OK


def _show(ws: Any, name: str, as_json: bool) -> int:
    from .. import serving

    row = serving.get(ws, name)
    history = ws.reader().deployment_history(name)
    version = ws.reader().resolve_model(f"{row['model_name']}/{row['model_version']}")
    produced = {"run_id": version["run_id"], "node_id": version["node_id"]}
    if as_json:
        print(json.dumps({**row, "produced_by": produced, "history": history}, default=str,
                         indent=2))  # fmt: skip
        return EXIT_OK
    print(f"{row['name']}: {row['model_name']}/{row['model_version']} ({row['ref']}) on "
          f"{row['target']} at {row['url']}, {row['state']}")  # fmt: skip
    if produced["run_id"]:
        print(
            f"{row['model_name']}/{row['model_version']} was registered by run "
            f"{produced['run_id']}, task {produced['node_id']}: what it was trained on is "
            f"`glasspane lineage {produced['run_id']} {produced['node_id']}`"
        )
    if row.get("run_id"):
        print(f"deployed by run {row['run_id']}")
    for event in history:
        when = event["ts"].strftime("%Y-%m-%d %H:%M:%S")
        message = f"  {event['message']}" if event["message"] else ""
        model = f"{event['model_name']}/{event['model_version']}"
        print(f"  {when}  {event['action']:<10} {model}{message}")
    return EXIT_OK
