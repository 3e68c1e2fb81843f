"""Shared fixtures of the web UI's tests: a Workspace with REAL runs, the app, a client.

Fixture names are stable (the API, security, SSE, CLI and page tests all use them):

``ui_flows`` (session)
    Path of ``ui_flows.py``, the pipelines below (:data:`FLOWS`), written to a temporary
    directory; a reference is ``f"{ui_flows}:mapped"``.
``ui_workspace`` (session)
    A ``glasspane.Workspace`` in a temporary home holding the runs of ``ui_runs``. Shared by
    every test: read it, never launch, retry or cancel in it (use ``flow``
    ``flow(name)``: the pipeline ``name`` of ``ui_flows``, imported as ``glasspane run`` does
    (for ``ws.run(flow("failing"), ...)``).
``fresh_workspace``).
``ui_runs`` (session)
    :class:`UIRuns`: the ids of those runs and the hostile values they carry.
``app`` / ``client``
    ``create_app(ui_workspace)`` (no token; Host ``127.0.0.1`` or ``localhost``) and a
    Starlette ``TestClient`` for it with ``base_url="http://127.0.0.1"``.
``flow``
    ``flow(name)``: the pipeline ``name`` of ``ui_flows``, imported as ``glasspane run`` does
    (for ``ws.run(flow("failing"), ...)``).
``fresh_workspace``
    A Workspace of its own (in ``tmp_path``) where ``mapped`` ran once, for tests that launch,
    retry or cancel runs.
``browser`` (module)
    Debian's chromium (``/usr/bin/chromium``) driven by Playwright, for the browser tests
    (which skip, saying why, when it is not installed).
``live_server``
    ``live_server(app, **uvicorn_options) -> "http://127.0.0.1:PORT"``: serves ``app`` with
    the uvicorn server ``glasspane ui`` uses, in a thread, until the test ends (for streaming
    over real HTTP).

The runs in ``ui_runs``:

- ``succeeded``: ``mapped(n=3)``: ``load`` prints HTML; ``square`` is mapped at run time
  (``square[0]``...); the task named ``<script>alert(1)</script>`` (``HOSTILE_NODE``, a node
  id with a slash in it) prints ``<img src=x onerror=alert(1)>``, logs a param and the metric
  ``loss`` at steps 0 and 1, and gets the parameter ``label`` = ``HOSTILE_PARAM``.
- ``second``: ``mapped(n=2)``: ``square[0]`` and ``square[1]`` are cache hits; compare it with
  ``succeeded``.
- ``failed``: ``failing(x=1)``: its task raised ``ValueError("<b>bad</b> value 1")``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.testclient import TestClient

from glasspane import Workspace, queries
from glasspane.loader import load_pipeline
from glasspane.ui.app import create_app
from glasspane.ui.cli import server as ui_server

HOSTILE_NODE = "<script>alert(1)</script>"
HOSTILE_PARAM = "<img src=x onerror=alert(1)>"

FLOWS = '''
"""Pipelines the web UI's tests run (written out by tests/ui/conftest.py)."""

import time
from pathlib import Path

from pydantic import SecretStr

from glasspane import expand, log_metric, log_param, pipeline, task


@task
def load(n: int) -> list[int]:
    print("<b>loaded</b>", n)
    return list(range(n))


@task
def square(x: int) -> int:
    return x * x


@task(name="<script>alert(1)</script>", tags=("<i>hostile</i>",))
def total(values: list[int], label: str) -> int:
    print("<img src=x onerror=alert(1)>", label)
    log_param("label", label)
    for step, loss in enumerate((0.5, 0.25)):
        log_metric("loss", loss, step=step)
    return sum(values)


@pipeline
def mapped(n: int = 3, label: str = "<img src=x onerror=alert(1)>"):
    return total(square.map(x=expand(load(n))), label)


@task
def boom(x: int) -> int:
    raise ValueError(f"<b>bad</b> value {x}")


@pipeline
def failing(x: int = 1):
    return boom(x)


@task
def wait_for(gate: str, steps: int) -> int:
    """Log `progress` at each step, then wait for the file GATE.STEP before going on."""
    for step in range(steps):
        log_metric("progress", float(step), step=step)
        deadline = time.time() + 120
        while not Path(f"{gate}.{step}").exists() and time.time() < deadline:
            time.sleep(0.02)
    return steps


@pipeline
def live(gate: str, steps: int = 3):
    return wait_for(gate, steps)


@task
def fetch(marker: str, api_key: SecretStr) -> int:
    if not Path(marker).exists():
        raise RuntimeError(f"{marker} does not exist yet")
    return len(api_key.get_secret_value())


@pipeline
def guarded(marker: str, api_key: SecretStr):
    return fetch(marker, api_key)
'''


@dataclass(frozen=True)
class UIRuns:
    """The runs of ``ui_workspace`` (see the module docstring)."""

    succeeded: str
    second: str
    failed: str
    #: content hash of the output of HOSTILE_NODE in ``succeeded``
    artifact: str
    hostile_node: str = HOSTILE_NODE
    hostile_param: str = HOSTILE_PARAM


@pytest.fixture(scope="session")
def ui_flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ui-flows") / "ui_flows.py"
    path.write_text(FLOWS)
    return path


def pipeline_of(flows: Path, name: str) -> Any:
    """The pipeline ``name`` of the flows module, imported as ``glasspane run`` does."""
    return load_pipeline(f"{flows}:{name}")


@pytest.fixture(scope="session")
def flow(ui_flows: Path) -> Callable[[str], Any]:
    return lambda name: pipeline_of(ui_flows, name)


@pytest.fixture(scope="session")
def _ui_state(
    tmp_path_factory: pytest.TempPathFactory, ui_flows: Path
) -> Iterator[tuple[Workspace, UIRuns]]:
    ws = Workspace(home=tmp_path_factory.mktemp("ui-home"))
    mapped = pipeline_of(ui_flows, "mapped")
    first = ws.run(mapped, {"n": 3})
    second = ws.run(mapped, {"n": 2})
    failed = ws.run(pipeline_of(ui_flows, "failing"), {}, raise_on_failure=False)
    detail = ws.query(queries.task_detail, first.run_id, HOSTILE_NODE)
    runs = UIRuns(
        succeeded=first.run_id,
        second=second.run_id,
        failed=failed.run_id,
        artifact=detail.outputs[0].content_hash,
    )
    yield ws, runs
    ws.close()


@pytest.fixture(scope="session")
def ui_workspace(_ui_state: tuple[Workspace, UIRuns]) -> Workspace:
    return _ui_state[0]


@pytest.fixture(scope="session")
def ui_runs(_ui_state: tuple[Workspace, UIRuns]) -> UIRuns:
    return _ui_state[1]


@pytest.fixture
def app(ui_workspace: Workspace) -> Starlette:
    return create_app(ui_workspace)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


@pytest.fixture
def fresh_workspace(tmp_path: Path, ui_flows: Path) -> Iterator[Workspace]:
    ws = Workspace(home=tmp_path / "fresh-home")
    ws.run(pipeline_of(ui_flows, "mapped"), {"n": 2})
    yield ws
    ws.close()


@pytest.fixture
def live_server() -> Iterator[Callable[..., str]]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Starlette, **options: Any) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = ui_server(app, lifespan="off", **options)  # as `glasspane ui` serves it
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started, "uvicorn did not start"
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless chromium for a module's browser tests (Playwright's event loop lives only
    as long as the module's tests)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        yield chromium
        chromium.close()
