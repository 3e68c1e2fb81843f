"""A run's events as server-sent events: replayed for a finished run, live for a run that
another process is executing, to many clients at once, and a follow that stops when its
client goes away."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from glasspane import Workspace, queries
from glasspane.errors import NotFound
from glasspane.ui import sse
from glasspane.ui.app import create_app
from glasspane.ui.cli import server as ui_server

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import UIRuns


def messages(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """SSE messages (``id``, ``event``, ``data`` parsed as JSON) and comments (``comment``)."""
    fields: dict[str, Any] = {}
    for line in lines:
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif not line:
            if fields:
                fields["data"] = json.loads(fields["data"])
                yield fields
            fields = {}
        else:
            name, _, value = line.partition(": ")
            fields[name] = value


def stored(ws: Workspace, run_id: str) -> list[dict[str, Any]]:
    """The run's events as the store holds them, as SSE messages carry them."""
    return [
        {"id": str(e.seq), "event": e.kind, "data": json.loads(json.dumps(e.to_dict()))}
        for e in ws.follow(run_id, timeout=120)
    ]


def wait_running(ws: Workspace, run_id: str) -> None:
    """Wait until the process ``ws.launch`` started runs ``run_id``."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if ws.query(queries.get_run, run_id).state == "running":
                return
        except NotFound:  # its process is taking the queued run over
            pass
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never started")


def open_gates(gate: Path, steps: int = 3) -> None:
    for step in range(steps):
        Path(f"{gate}.{step}").touch()


# ---- a finished run: replayed, then the stream ends ---------------------------------------------


def test_a_finished_run_is_replayed_in_order_and_the_stream_ends(
    client: TestClient, ui_workspace: Workspace, ui_runs: UIRuns
) -> None:
    response = client.get(f"/api/runs/{ui_runs.succeeded}/events")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    got = list(messages(response.text.splitlines()))
    assert got == stored(ui_workspace, ui_runs.succeeded)
    assert [int(m["id"]) for m in got] == list(range(1, len(got) + 1))
    assert got[0]["event"] == "run_started" and got[-1]["event"] == "run_finished"
    assert got[0]["data"]["params"]["label"] == ui_runs.hostile_param


def test_after_and_last_event_id_resume_a_stream(client: TestClient, ui_runs: UIRuns) -> None:
    url = f"/api/runs/{ui_runs.succeeded}/events"
    total = len(list(messages(client.get(url).text.splitlines())))
    later = list(messages(client.get(url, params={"after": 3}).text.splitlines()))
    assert [int(m["id"]) for m in later] == list(range(4, total + 1))
    resumed = client.get(url, params={"after": 1}, headers={"Last-Event-ID": "5"})
    assert [int(m["id"]) for m in messages(resumed.text.splitlines())][0] == 6
    # a browser reconnecting once the run is over, with nothing left: 204 stops EventSource
    done = client.get(url, headers={"Last-Event-ID": str(total)})
    assert done.status_code == 204


def test_events_of_an_unknown_run_or_a_bad_after_are_errors(
    client: TestClient, ui_runs: UIRuns
) -> None:
    unknown = client.get("/api/runs/zzzz/events")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "no run `zzzz`; list runs with `glasspane runs list`"}
    bad = client.get(f"/api/runs/{ui_runs.failed}/events", params={"after": "-1"})
    assert bad.status_code == 422
    assert bad.json()["error"].startswith("query parameter `after`: Input should be greater")


# ---- a live run, executing in another process ----------------------------------------------------


def test_a_live_run_in_another_process_streams_its_events_as_they_happen(
    fresh_workspace: Workspace,
    ui_flows: Path,
    tmp_path: Path,
    live_server: Callable[[Starlette], str],
) -> None:
    ws, gate = fresh_workspace, tmp_path / "gate"
    run_id = ws.launch(f"{ui_flows}:live", {"gate": str(gate)})
    base = live_server(create_app(ws))
    got: list[dict[str, Any]] = []
    try:
        with (
            httpx.Client(base_url=base, timeout=60) as http,
            http.stream("GET", f"/api/runs/{run_id}/events") as response,
        ):
            assert response.status_code == 200
            for message in messages(response.iter_lines()):
                got.append(message)
                if message.get("event") == "metric_logged":
                    # heard while the run is still running: the task waits for this gate
                    assert ws.query(queries.get_run, run_id).state == "running"
                    Path(f"{gate}.{message['data']['step']}").touch()
    finally:
        open_gates(gate)
    assert got == stored(ws, run_id)  # every event, in sequence order, and nothing after
    assert [int(m["id"]) for m in got] == list(range(1, len(got) + 1))
    assert [m["data"]["step"] for m in got if m["event"] == "metric_logged"] == [0, 1, 2]
    assert got[-1]["event"] == "run_finished" and got[-1]["data"]["state"] == "succeeded"


def test_twenty_clients_follow_one_live_run(
    fresh_workspace: Workspace,
    ui_flows: Path,
    tmp_path: Path,
    live_server: Callable[[Starlette], str],
) -> None:
    ws, gate = fresh_workspace, tmp_path / "gate"
    run_id = ws.launch(f"{ui_flows}:live", {"gate": str(gate)})
    app = create_app(ws)
    base = live_server(app)
    results: list[list[dict[str, Any]]] = [[] for _ in range(20)]
    listening = threading.Barrier(21, timeout=120)
    errors: list[BaseException] = []

    def listen(i: int) -> None:
        try:
            with (
                httpx.Client(base_url=base, timeout=120) as http,
                http.stream("GET", f"/api/runs/{run_id}/events") as response,
            ):
                assert response.status_code == 200
                for message in messages(response.iter_lines()):
                    results[i].append(message)
                    if len(results[i]) == 1:
                        listening.wait()  # every client has its first event
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
            listening.abort()

    threads = [threading.Thread(target=listen, args=(i,)) for i in range(20)]
    try:
        for thread in threads:
            thread.start()
        listening.wait()
        assert ws.query(queries.get_run, run_id).state in ("queued", "running")
    finally:
        open_gates(gate)
        for thread in threads:
            thread.join(120)
    assert not errors, errors
    expected = stored(ws, run_id)
    assert expected[-1]["event"] == "run_finished"
    assert all(result == expected for result in results)
    assert len(app.state.streams) == 0


def test_a_client_going_away_stops_its_follow(
    fresh_workspace: Workspace,
    ui_flows: Path,
    tmp_path: Path,
    live_server: Callable[[Starlette], str],
) -> None:
    ws, gate = fresh_workspace, tmp_path / "gate"
    run_id = ws.launch(f"{ui_flows}:live", {"gate": str(gate)})
    wait_running(ws, run_id)
    app = create_app(ws)
    base = live_server(app)
    try:
        with (
            httpx.Client(base_url=base, timeout=60) as http,
            http.stream("GET", f"/api/runs/{run_id}/events") as response,
        ):
            first = next(messages(response.iter_lines()))
            assert first["event"] == "run_started"
            assert len(app.state.streams) == 1 and _followers(run_id) == 1
        deadline = time.monotonic() + sse.FOLLOW_CHUNK + 5
        while (len(app.state.streams) or _followers(run_id)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(app.state.streams) == 0 and _followers(run_id) == 0
        assert ws.query(queries.get_run, run_id).state == "running"  # the run goes on
    finally:
        open_gates(gate)
    assert stored(ws, run_id)[-1]["event"] == "run_finished"


def test_an_idle_stream_sends_keepalive_comments(
    fresh_workspace: Workspace,
    ui_flows: Path,
    tmp_path: Path,
    live_server: Callable[[Starlette], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sse, "KEEPALIVE", 0.3)
    ws, gate = fresh_workspace, tmp_path / "gate"
    run_id = ws.launch(f"{ui_flows}:live", {"gate": str(gate)})
    wait_running(ws, run_id)
    base = live_server(create_app(ws))
    try:
        with (
            httpx.Client(base_url=base, timeout=60) as http,
            http.stream("GET", f"/api/runs/{run_id}/events") as response,
        ):
            seen = []
            for message in messages(response.iter_lines()):
                seen.append(message.get("event") or message["comment"])
                if message.get("comment") == "keepalive":
                    break
            assert seen[0] == "run_started" and "metric_logged" in seen  # then idle
    finally:
        open_gates(gate)
    list(ws.follow(run_id, timeout=120))


def _followers(run_id: str) -> int:
    """The threads following ``run_id`` for a stream."""
    return sum(t.name == f"glasspane-sse-{run_id}" for t in threading.enumerate())


def test_stopping_the_server_ends_live_streams_at_once(
    fresh_workspace: Workspace, ui_flows: Path, tmp_path: Path
) -> None:
    ws, gate = fresh_workspace, tmp_path / "gate"
    run_id = ws.launch(f"{ui_flows}:live", {"gate": str(gate)})
    app = create_app(ws)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = ui_server(app, lifespan="off", timeout_graceful_shutdown=30)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with (
            httpx.Client(base_url=base, timeout=60) as http,
            http.stream("GET", f"/api/runs/{run_id}/events") as response,
        ):
            lines = response.iter_lines()
            assert next(messages(lines))["event"] == "run_started"
            began = time.monotonic()
            server.should_exit = True
            rest = list(messages(lines))  # the stream ends, well before the 30 s grace
        thread.join(30)
        assert not thread.is_alive() and time.monotonic() - began < 5
        assert all(m.get("event") != "run_finished" for m in rest)
    finally:
        open_gates(gate)
        server.should_exit = True
        thread.join(30)
    list(ws.follow(run_id, timeout=120))
