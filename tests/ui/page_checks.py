"""Checks the page tests share: a page obeys the CSP and carries no raw payload, and small
readers of its markup by element id."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from starlette.testclient import TestClient

RAW_PAYLOADS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<b>bad</b>",
    "<b>loaded</b>",
    "<i>hostile</i>",
)


class Tags(HTMLParser):
    """Every start tag of a page, with its attributes, and the text of each element id."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def check_safe(html: str) -> list[tuple[str, dict[str, str | None]]]:
    """Assert the page obeys the CSP (no inline script, handler or style) and carries no raw
    payload; return its tags."""
    for payload in RAW_PAYLOADS:
        assert payload not in html, f"{payload} reached the page unescaped"
    parser = Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        assert "style" not in attrs, (tag, attrs)
        if tag == "script":
            assert attrs.get("src", "").startswith("/static/") and "defer" in attrs, attrs
        if tag == "style":
            raise AssertionError("an inline <style> element")
    return parser.tags


def get_page(client: TestClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    check_safe(response.text)
    return response.text


def by_id(html: str, element_id: str) -> str:
    """The text of the element with ``element_id`` (tags stripped, whitespace squeezed)."""
    match = re.search(rf'<(\w+)[^>]*\sid="{re.escape(element_id)}"[^>]*>', html)
    assert match, f"no #{element_id}"
    tag, start = match.group(1), match.end()
    depth, pos = 1, start
    pattern = re.compile(rf"<(/?){tag}\b[^>]*>")
    while depth:
        found = pattern.search(html, pos)
        assert found, f"#{element_id} is not closed"
        depth += -1 if found.group(1) else 1
        pos = found.end()
    text = re.sub(r"<[^>]+>", " ", html[start : found.start()])
    return " ".join(text.split())


def by_id_html(html: str, element_id: str) -> str:
    """The markup from the start tag with ``element_id`` on (enough to search in)."""
    start = html.rfind("<", 0, html.index(f'id="{element_id}"'))
    return html[start : start + 40_000]


def graph_of(html: str) -> str:
    """The run graph's SVG."""
    start = html.index('id="run-graph"')
    return html[start : html.index("</svg>", start)]


def post(client: TestClient, url: str, data: dict[str, str] | None = None) -> Any:
    return client.post(
        url, data=data or {}, headers={"Origin": "http://127.0.0.1"}, follow_redirects=False
    )
