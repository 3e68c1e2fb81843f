"""Fixtures of the CLI tests: ``cli`` runs the console script in a fresh working directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_harness import PIPELINES, Cli


@pytest.fixture
def cli(glasspane_cmd: list[str], glasspane_home: Path, tmp_path: Path) -> Cli:
    # glasspane_cmd, glasspane_home: tests/conftest.py (the same home is used in-process)
    (tmp_path / "flows.py").write_text(PIPELINES)
    return Cli(glasspane_cmd, tmp_path, glasspane_home)
