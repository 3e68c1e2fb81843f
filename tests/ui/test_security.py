"""The security middleware, over real HTTP through the app: the token on every route (pages,
API, event stream, static files), the login form's cookie, cross-site requests, the Host
header, the security headers on every response, and a token never logged."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from glasspane import Workspace
from glasspane.ui.app import create_app
from glasspane.ui.auth import SESSION_COOKIE
from glasspane.ui.security import CONTENT_SECURITY_POLICY, INTERNAL_ERROR, SecurityMiddleware

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import UIRuns

TOKEN = "correct-horse-battery-staple-1f3a"
BASE = "http://127.0.0.1:8420"


@pytest.fixture
def secured(ui_workspace: Workspace) -> Starlette:
    return create_app(ui_workspace, token=TOKEN, allowed_hosts=("127.0.0.1", "ml.example.com"))


@pytest.fixture
def anonymous(secured: Starlette) -> TestClient:
    return TestClient(secured, base_url=BASE, follow_redirects=False)


def routes(runs: UIRuns) -> dict[str, str]:
    """One route of each kind."""
    return {
        "page": f"/runs/{runs.succeeded}",
        "api": "/api/runs",
        "sse": f"/api/runs/{runs.succeeded}/events",
        "static": "/static/style.css",
    }


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("kind", ["page", "api", "sse", "static"])
def test_without_the_token_every_route_is_401(
    anonymous: TestClient, ui_runs: UIRuns, kind: str
) -> None:
    path = routes(ui_runs)[kind]
    response = anonymous.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="glasspane"'
    if kind == "page":  # a browser gets the login form, coming back here once logged in
        assert '<form method="post" action="/login">' in response.text
        assert f'name="next" value="{path}"' in response.text
    else:
        assert response.json() == {
            "error": "this glasspane UI needs its token: send `Authorization: Bearer <token>` "
            "(the value of GLASSPANE_UI_TOKEN where the server runs), or log in at /login"
        }
    wrong = anonymous.get(path, headers=bearer("not-the-token"))
    assert wrong.status_code == 401
    right = anonymous.get(path, headers=bearer())
    assert right.status_code == 200


def test_a_wrong_bearer_token_says_so(anonymous: TestClient) -> None:
    response = anonymous.get("/api/runs", headers=bearer(TOKEN[:-1]))
    assert response.status_code == 401
    assert response.json()["error"].startswith("the bearer token sent is not this server's")


def test_the_login_form_sets_an_httponly_strict_cookie_that_works(
    secured: Starlette, anonymous: TestClient, ui_runs: UIRuns
) -> None:
    form = anonymous.get("/login", params={"next": "/pipelines"})
    assert form.status_code == 200 and 'type="password" name="token"' in form.text
    wrong = anonymous.post("/login", data={"token": "guess", "next": "/pipelines"})
    assert wrong.status_code == 401 and SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
    assert "not this server&#x27;s token" in wrong.text
    right = anonymous.post("/login", data={"token": TOKEN, "next": "/pipelines"})
    assert right.status_code == 303 and right.headers["location"] == "/pipelines"
    cookie = right.headers["set-cookie"]
    attributes = [part.strip() for part in cookie.split(";")]
    assert "HttpOnly" in attributes and "SameSite=Strict" in attributes and "Path=/" in attributes
    assert TOKEN not in cookie  # the cookie is not the token
    browser = TestClient(
        secured, base_url=BASE, cookies={SESSION_COOKIE: right.cookies[SESSION_COOKIE]}
    )
    for path in routes(ui_runs).values():
        assert browser.get(path).status_code == 200, path
    forged = TestClient(secured, base_url=BASE, cookies={SESSION_COOKIE: "0" * 64})
    assert forged.get("/api/runs").status_code == 401


def test_login_goes_back_only_to_this_site(anonymous: TestClient) -> None:
    for target in ("//evil.example/x", "https://evil.example", "/\\evil.example", "runs"):
        response = anonymous.post("/login", data={"token": TOKEN, "next": target})
        assert response.headers["location"] == "/", target


def test_logout_forgets_the_cookie(anonymous: TestClient) -> None:
    response = anonymous.post("/logout")
    assert response.status_code == 303
    assert f"{SESSION_COOKIE}=;" in response.headers["set-cookie"]
    assert "Max-Age=0" in response.headers["set-cookie"]


def test_a_cross_site_post_is_403_even_with_the_token(
    anonymous: TestClient, ui_runs: UIRuns
) -> None:
    url = f"/api/runs/{ui_runs.succeeded}/cancel"
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:9999"},  # another port is another origin
        {"Referer": "https://evil.example/page"},
    ):
        response = anonymous.post(url, headers={**bearer(), **headers})
        assert response.status_code == 403, headers
        assert response.json()["error"].startswith("refused a cross-site POST request: it comes")
    login = anonymous.post(
        "/login", data={"token": TOKEN}, headers={"Origin": "https://evil.example"}
    )
    assert login.status_code == 403
    page_form = anonymous.post(
        f"/runs/{ui_runs.succeeded}/cancel", headers={**bearer(), "Origin": "https://evil.example"}
    )
    assert page_form.status_code == 403
    for own in ({"Origin": BASE}, {"Referer": f"{BASE}/runs/x"}, {}):
        response = anonymous.post(url, headers={**bearer(), **own})
        assert response.json() == {"run_id": ui_runs.succeeded, "cancelled": False}, own


def test_a_foreign_host_is_refused_before_anything(anonymous: TestClient) -> None:
    for host in ("evil.example", "evil.example:8420", "127.0.0.1.evil.example", ""):
        response = anonymous.get("/api/runs", headers={**bearer(), "Host": host})
        assert response.status_code == 400, host
        assert response.json()["error"] == (
            f"this glasspane UI does not answer to the Host `{host}` (it answers to 127.0.0.1, "
            "ml.example.com); open the address `glasspane ui` printed, or add the name to "
            "GLASSPANE_UI_HOSTS where the server runs"
        )
    for host in ("127.0.0.1:8420", "ML.example.com", "ml.example.com.:443"):
        assert anonymous.get("/api/runs", headers={**bearer(), "Host": host}).status_code == 200


def test_without_a_token_only_loopback_names_are_served(client: TestClient) -> None:
    assert client.get("/api/runs", headers={"Host": "localhost:8420"}).status_code == 200
    assert client.get("/api/runs", headers={"Host": "attacker.example"}).status_code == 400
    assert client.get("/login", follow_redirects=False).headers["location"] == "/"


def test_every_kind_of_response_carries_the_security_headers(
    anonymous: TestClient, ui_runs: UIRuns
) -> None:
    authed = {**bearer()}
    responses = {
        "page": anonymous.get(f"/runs/{ui_runs.succeeded}", headers=authed),
        "page 404": anonymous.get("/runs/zzzz", headers=authed),
        "api": anonymous.get("/api/runs", headers=authed),
        "api 404": anonymous.get("/api/runs/zzzz", headers=authed),
        "api 422": anonymous.get("/api/runs?limit=0", headers=authed),
        "sse": anonymous.get(f"/api/runs/{ui_runs.succeeded}/events", headers=authed),
        "static": anonymous.get("/static/style.css", headers=authed),
        "static 404": anonymous.get("/static/nothing.css", headers=authed),
        "openapi": anonymous.get("/api/openapi.json", headers=authed),
        "login": anonymous.get("/login"),
        "redirect": anonymous.post("/login", data={"token": TOKEN}),
        "401": anonymous.get("/api/runs"),
        "403": anonymous.post("/logout", headers={"Origin": "https://evil.example"}),
        "400 host": anonymous.get("/api/runs", headers={"Host": "evil.example"}),
    }
    for kind, response in responses.items():
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, kind
        assert response.headers["x-content-type-options"] == "nosniff", kind
        assert response.headers["referrer-policy"] == "same-origin", kind
        assert response.headers["x-frame-options"] == "DENY", kind
    assert CONTENT_SECURITY_POLICY == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


def test_a_crash_is_answered_as_json_with_the_headers() -> None:
    async def crashing(scope: dict, receive: object, send: object) -> None:
        raise RuntimeError("a bug")

    guarded = SecurityMiddleware(crashing, token=None, allowed_hosts=["127.0.0.1"])
    client = TestClient(guarded, base_url=BASE, raise_server_exceptions=False)
    response = client.get("/api/runs")
    assert response.status_code == 500
    assert response.json() == {"error": INTERNAL_ERROR}
    assert "a bug" not in response.text  # no detail leaks; the server logs it
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY"


def test_the_token_never_reaches_a_log_or_a_url(
    secured: Starlette,
    live_server: Callable[[Starlette], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    base = live_server(secured, log_level="info", log_config=None)  # with its access log
    with httpx.Client(base_url=base, follow_redirects=False) as http:
        login = http.post("/login", data={"token": TOKEN, "next": "/"})
        assert login.status_code == 303 and TOKEN not in login.headers["location"]
        assert http.get("/api/runs", headers=bearer()).status_code == 200
        assert http.get("/api/runs", headers=bearer("wrong")).status_code == 401
    assert '"POST /login HTTP/1.1" 303' in caplog.text  # the access log was on
    assert TOKEN not in caplog.text
