"""``glasspane models list|show|promote|alias rm``: glasspane's own model registry from a
shell (versions registered by runs with ``glasspane.register_model``; aliases, not stages).

A version a tracker also registered in its own registry (MLflow's) is *linked* to it
(``model_links``): ``show`` lists the link, and ``promote`` / ``alias rm`` move the alias there
too, through the tracker's optional ``set_model_alias`` / ``remove_model_alias``. When that
registry cannot be reached, glasspane's alias still moves and a warning on stderr says how to
retry.
"""

from __future__ import annotations

import argparse
import json
import sys
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
        _mirror(ws, args.name, args.version, args.alias, remove=False)
        return EXIT_OK
    if args.models_command == "alias":
        version = ws.store.remove_model_alias(args.name, args.alias)
        print(f"removed {args.name}@{args.alias} (it named version {version})")
        _mirror(ws, args.name, version, args.alias, remove=True)
        return EXIT_OK
    if args.models_command == "show":
        return _show(ws, args.name, args.json)
    return _list(ws, args.json)


def _show(ws: Any, name: str, as_json: bool) -> int:
    found = ws.reader().resolve_model(name)  # NotFound names the registered models
    rows = ws.reader().model_versions(found["name"])
    links: dict[int, list[dict[str, Any]]] = {}
    for link in ws.reader().model_links(found["name"]):
        links.setdefault(link["version"], []).append(
            {k: link[k] for k in ("registry", "external_name", "external_version", "uri")}
        )
    for row in rows:
        row["links"] = links.get(row["version"], [])
    if as_json:
        print(json.dumps(rows, default=str, indent=2))
        return EXIT_OK
    print(
        f"{'VERSION':<8} {'ALIASES':<18} {'RUN':<13} {'TASK':<20} {'CREATED':<17} "
        f"{'TYPE':<30} LINKS"
    )
    for row in rows:
        aliases = ",".join(row["aliases"]) or "-"
        created = row["created_at"].strftime("%Y-%m-%d %H:%M")
        linked = " ".join(
            f"{link['registry']}:{link['external_name']}/{link['external_version']}"
            for link in row["links"]
        )
        print(
            f"{row['version']:<8} {aliases:<18} {row['run_id'] or '-':<13} "
            f"{row['node_id'] or '-':<20} {created:<17} {row['type_name']:<30} {linked or '-'}"
        )
    return EXIT_OK


def _mirror(ws: Any, name: str, version: int, alias: str, *, remove: bool) -> None:
    """Move ``name@alias`` in each configured tracker's registry that has ``name/version``
    linked, too; a tracker that fails is a warning (glasspane's alias has moved)."""
    from ..errors import GlasspaneError
    from ..tracking import configured, context_for, make

    on = configured(ws.settings)
    linked = [link for link in ws.store.model_links(name, version) if link["registry"] in on]
    for link in linked:
        tracker_name, external = link["registry"], link["external_name"]
        tracker = None
        try:
            tracker = make(tracker_name, context_for(tracker_name, ws.settings))
            move = getattr(tracker, "remove_model_alias" if remove else "set_model_alias", None)
            if not callable(move) or getattr(tracker, "registry", True) is False:
                continue  # a tracker without a registry of aliases, or with it turned off
            if remove:
                move(external, alias)
                print(f"{tracker_name}: removed {external}@{alias}")
            else:
                move(external, link["external_version"], alias)
                print(f"{tracker_name}: {external}@{alias} -> version {link['external_version']}")
        except GlasspaneError as exc:
            if remove:
                retry = (
                    f"remove alias `{alias}` of `{external}` there once it is reachable (its UI, "
                    f"or MlflowClient().delete_registered_model_alias({external!r}, {alias!r}))"
                )
            else:
                retry = (
                    f"run `glasspane models promote {name} {version} --alias {alias}` again "
                    "once it is reachable"
                )
            sys.stderr.write(
                f"glasspane: warning: {name}@{alias} moved in glasspane, but not in tracker "
                f"`{tracker_name}`'s registry ({exc}); {retry}\n"
            )
        finally:
            if tracker is not None:
                tracker.close()


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
