"""The layout the tools enforce: modules stay small, and the import contracts cover every module.

import-linter itself runs in CI (``.ci/run``) against a regular install; these tests check what
it cannot: that no module grows past 400 lines, and that every engine module is classified for
the UI and the integrations (public, or forbidden to them).
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ("engine", "ui", "integrations")
MAX_LINES = 400

#: Engine modules the UI and the integrations may import: the facade, the event and listener
#: seams, the read-only queries, the public types and the scheduler loop (``glasspane
#: server`` runs it beside the UI).
PUBLIC = {
    "api", "config", "deploying", "errors", "events", "listeners", "queries", "scheduler",
    "tracking", "types", "workspace",
}  # fmt: skip


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def _modules() -> dict[str, int]:
    return {
        path.relative_to(REPO).as_posix(): _lines(path)
        for folder in FOLDERS
        for path in sorted((REPO / folder).rglob("*.py"))
    }


def test_every_module_has_fewer_than_400_lines() -> None:
    too_long = {name: lines for name, lines in _modules().items() if lines >= MAX_LINES}
    assert not too_long, (
        f"modules of {MAX_LINES} lines or more (split each along a real seam, one concept per "
        f"module): {', '.join(f'{name} ({lines})' for name, lines in sorted(too_long.items()))}"
    )


def _contract(name: str) -> dict:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["name"] == name]
    return contract


def test_every_engine_module_is_public_or_forbidden_to_the_ui_and_the_integrations() -> None:
    contract = _contract("The UI and the integrations use only the engine's public modules")
    forbidden = {name.removeprefix("glasspane.") for name in contract["forbidden_modules"]}
    engine = {
        path.stem if path.is_file() else path.name
        for path in (REPO / "engine").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
    }
    unclassified = engine - forbidden - PUBLIC
    assert not unclassified, (
        f"engine modules neither public nor forbidden to the UI and the integrations: "
        f"{', '.join(sorted(unclassified))}; add each to the contract's forbidden_modules in "
        "pyproject.toml, or to PUBLIC in tests/engine/test_layout.py if it is public"
    )
    assert not forbidden & PUBLIC


def test_the_engine_never_imports_the_ui_or_the_integrations_covers_every_module() -> None:
    contract = _contract("The engine never imports the UI or the integrations")
    assert contract["source_modules"] == ["glasspane.*"]
    assert sorted(contract["forbidden_modules"]) == ["glasspane.integrations", "glasspane.ui"]
