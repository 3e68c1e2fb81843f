"""``glasspane models list|show|promote|alias rm``: glasspane's own model registry from a
shell (versions registered by runs with ``glasspane.register_model``; aliases, not stages)."""

from __future__ import annotations

import argparse
import json
from typing import Any

EXIT_OK = 0
EPILOG_CODES = """exit codes:
  0    done
  2    a usage or configuration error, or no such model, version or alias (one line)
"""


def add_parsers(sub: Any, command: Any) -> None:
    """Add ``models`` (``list``, ``show``, ``promote``, ``alias rm``) to ``sub``."""
    group = command(
        sub,
        "models",
        "the model registry: versions registered by runs, and their aliases",
        description="Models are registered by tasks with glasspane.register_model(name, "
        "model, alias=...); each registration is a new version, numbered from 1, kept with the "
        "run and task that produced it. Aliases (champion, staging...) name the version to use: "
        'glasspane.load_model("churn@champion") loads it.',
    )
    verbs = group.add_subparsers(
        dest="models_command", metavar="list|show|promote|alias", required=True
    )
    listing = command(
        verbs, "list", "every registered model: latest version and aliases",
        epilog=EPILOG_CODES + "\nexamples:\n  glasspane models list\n"
        "  glasspane models list --json",
    )  # fmt: skip
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show = command(
        verbs, "show", "a model's versions: aliases, producing run and task, metadata",
        epilog=EPILOG_CODES + "\nexamples:\n  glasspane models show churn\n"
        "  glasspane models show churn --json",
    )  # fmt: skip
    show.add_argument("name", help="the model's name")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    promote = command(
        verbs, "promote", "point an alias at a version (moving it from the one it named)",
        epilog=EPILOG_CODES + "\nexamples:\n  glasspane models promote churn 3 --alias champion",
    )  # fmt: skip
    promote.add_argument("name", help="the model's name")
    promote.add_argument("version", type=int, help="the version the alias will name")
    promote.add_argument("--alias", required=True, help="the alias, e.g. champion")
    alias = command(verbs, "alias", "remove an alias")
    alias_verbs = alias.add_subparsers(dest="alias_command", metavar="rm", required=True)
    remove = command(
        alias_verbs, "rm", "remove an alias of a model (its version stays registered)",
        epilog=EPILOG_CODES + "\nexamples:\n  glasspane models alias rm churn staging",
    )  # fmt: skip
    remove.add_argument("name", help="the model's name")
    remove.add_argument("alias", help="the alias to remove")


def main(args: argparse.Namespace) -> int:
    from ..api import default_workspace

    ws = default_workspace()
    if args.models_command == "promote":
        before = ws.store.set_model_alias(args.name, args.alias, args.version)
        moved = "" if before in (None, args.version) else f" (it named version {before})"
        print(f"{args.name}@{args.alias} -> version {args.version}{moved}")
        return EXIT_OK
    if args.models_command == "alias":
        version = ws.store.remove_model_alias(args.name, args.alias)
        print(f"removed {args.name}@{args.alias} (it named version {version})")
        return EXIT_OK
    if args.models_command == "show":
        found = ws.reader().resolve_model(args.name)  # NotFound names the registered models
        rows = ws.reader().model_versions(found["name"])
        if args.json:
            print(json.dumps(rows, default=str, indent=2))
            return EXIT_OK
        print(f"{'VERSION':<8} {'ALIASES':<18} {'RUN':<13} {'TASK':<20} {'CREATED':<17} TYPE")
        for row in rows:
            aliases = ",".join(row["aliases"]) or "-"
            created = row["created_at"].strftime("%Y-%m-%d %H:%M")
            print(
                f"{row['version']:<8} {aliases:<18} {row['run_id'] or '-':<13} "
                f"{row['node_id'] or '-':<20} {created:<17} {row['type_name']}"
            )
        return EXIT_OK
    return _list(ws, args.json)


def _list(ws: Any, as_json: bool) -> int:
    from ..errors import NotFound

    try:
        rows = ws.reader().model_versions()
    except NotFound:  # nothing ran here yet
        rows = []
    models: dict[str, dict[str, Any]] = {}
    for row in rows:  # newest version first within each name
        entry = models.setdefault(
            row["name"],
            {"name": row["name"], "latest": row["version"], "versions": 0, "aliases": {},
             "latest_registered_at": row["created_at"]},
        )  # fmt: skip
        entry["versions"] += 1
        for alias in row["aliases"]:
            entry["aliases"][alias] = row["version"]
    if as_json:
        print(json.dumps(list(models.values()), default=str, indent=2))
        return EXIT_OK
    if not models:
        print("no model is registered yet: call glasspane.register_model(name, model) in a task")
        return EXIT_OK
    print(f"{'NAME':<24} {'LATEST':<7} {'VERSIONS':<9} ALIASES")
    for entry in models.values():
        aliases = ", ".join(f"{a}={v}" for a, v in sorted(entry["aliases"].items())) or "-"
        print(f"{entry['name']:<24} {entry['latest']:<7} {entry['versions']:<9} {aliases}")
    return EXIT_OK
