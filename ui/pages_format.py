"""Formatting for the HTML pages: times (relative and absolute), durations, sizes, values.

These are the templates' Jinja filters and globals (:data:`FILTERS`, :data:`GLOBALS`). Each
returns plain text, which Jinja escapes, except :func:`ticked`, which escapes every part
itself.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

from .render import svg

#: characters of a value shown in full before it is cut (``pretty``)
MAX_PRETTY = 4000


def abstime(value: datetime | None) -> str:
    """``2025-03-01 14:30:05 UTC``; an empty string for None."""
    if value is None:
        return ""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def isotime(value: datetime | None) -> str:
    """The ISO 8601 form, for ``<time datetime=...>`` (read by app.js)."""
    return "" if value is None else value.astimezone(timezone.utc).isoformat()


def reltime(value: datetime | None, now: datetime | None = None) -> str:
    """``5 min ago`` (or ``in 5 min``); ``—`` for None."""
    if value is None:
        return "—"
    now = now or datetime.now(timezone.utc)
    seconds = (now - value).total_seconds()
    ahead = seconds < 0
    seconds = abs(seconds)
    if seconds < 5:
        return "just now"
    if seconds < 60:
        text = f"{int(seconds)} s"
    elif seconds < 3600:
        text = f"{int(seconds // 60)} min"
    elif seconds < 86400:
        text = f"{int(seconds // 3600)} h"
    elif seconds < 86400 * 60:
        days = int(seconds // 86400)
        text = f"{days} day{'s' if days > 1 else ''}"
    else:
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d")
    return f"in {text}" if ahead else f"{text} ago"


def duration(seconds: float | None) -> str:
    """``0.42 s``, ``12.3 s``, ``3 min 04 s``, ``1 h 02 min``; ``—`` for None."""
    return svg.duration(seconds, compact=False)


def filesize(size: int | None) -> str:
    """``512 B``, ``12.3 KB``, ``4.5 MB`` (powers of 1024)."""
    if size is None:
        return "—"
    amount = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{int(amount)} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TB"  # pragma: no cover - the loop returns


def number(value: float | int | None) -> str:
    """A metric value: up to 6 significant digits; ``—`` for None."""
    if value is None:
        return "—"
    if isinstance(value, int):  # bool too
        return str(value)
    return f"{value:.6g}"


def signed(value: float | None) -> str:
    """A difference with its sign: ``+0.0312``, ``-2``; empty for None, ``0`` for none."""
    if value is None:
        return ""
    return "0" if value == 0 else f"{value:+.4g}"


def plain(value: Any) -> str:
    """A parameter or cell value in one line: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)


def pretty(value: Any, limit: int = MAX_PRETTY) -> str:
    """A value as indented JSON (strings as they are), cut at ``limit`` characters."""
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, indent=2, default=str, ensure_ascii=False)
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ticked(text: str | None) -> Markup:
    """A message with its `backticked` names as ``<code>``; everything else escaped."""
    parts = str(text or "").split("`")
    if len(parts) % 2 == 0:  # an unmatched backtick: show the text as it is
        return Markup(escape(text or ""))
    return Markup("").join(
        Markup("<code>{}</code>").format(part) if i % 2 else escape(part)
        for i, part in enumerate(parts)
    )


def firstline(text: str | None, limit: int = 160) -> str:
    """The first non-blank line of an error message, cut at ``limit`` characters."""
    if not text:
        return ""
    line = next((line for line in text.splitlines() if line.strip()), "").strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def short(value: str | None, length: int = 8) -> str:
    """The first ``length`` characters of an id or hash."""
    return "" if value is None else value[:length]


def statetext(state: str | None) -> str:
    """A state as words: ``upstream failed``."""
    return "—" if state is None else state.replace("_", " ")


def run_url(run_id: str) -> str:
    """The run page of ``run_id``."""
    return f"/runs/{quote(run_id, safe='')}"


def task_url(run_id: str, node: str) -> str:
    """The task panel of ``node`` in run ``run_id`` (node ids keep their ``/``)."""
    return f"/runs/{quote(run_id, safe='')}/tasks/{quote(node, safe='/')}"


def artifact_url(content_hash: str) -> str:
    """The artifact page of ``content_hash``."""
    return f"/artifacts/{quote(content_hash, safe='')}"


def pipeline_url(name: str) -> str:
    """The pipeline page of ``name``."""
    return f"/pipelines/{quote(name, safe='')}"


def schedule_url(name: str) -> str:
    """The schedule page of ``name``."""
    return f"/schedules/{quote(name, safe='')}"


def external_url(url: str | None) -> str | None:
    """A link another system gave (a tracker's run page), if it is http(s): never a
    ``javascript:`` or ``data:`` URL in an ``href``."""
    if url and url.split(":", 1)[0].lower() in ("http", "https"):
        return url
    return None


#: how the pages name the trackers glasspane knows (others by their configured name)
TRACKER_LABELS = {"mlflow": "MLflow", "wandb": "W&B"}


def tracker_label(name: str) -> str:
    """A tracker's name as people write it: ``MLflow``, ``W&B``."""
    return TRACKER_LABELS.get(name, name)


def compare_url(left: str, right: str) -> str:
    """The compare view of two sides (run ids, or ``tracker:id`` of a tracker's run)."""
    return f"/compare?runs={quote(f'{left},{right}', safe=',:')}"


FILTERS = {
    "abstime": abstime,
    "isotime": isotime,
    "reltime": reltime,
    "duration": duration,
    "filesize": filesize,
    "number": number,
    "signed": signed,
    "plain": plain,
    "pretty": pretty,
    "firstline": firstline,
    "ticked": ticked,
    "short": short,
    "statetext": statetext,
    "external_url": external_url,
    "tracker_label": tracker_label,
}

GLOBALS = {
    "run_url": run_url,
    "task_url": task_url,
    "artifact_url": artifact_url,
    "pipeline_url": pipeline_url,
    "schedule_url": schedule_url,
    "compare_url": compare_url,
}
