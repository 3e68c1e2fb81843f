"""SVG markup primitives shared by the renderers: escaping, numbers, durations, the root.

Every value that came from a user (task names, node ids, argument names, metric keys, run
ids) reaches the markup only through :func:`text`, which escapes it for XML and replaces
the characters XML 1.0 forbids, so the output always parses (and encodes as UTF-8). Only
the renderers' own fixed markup is written unescaped.
"""

from __future__ import annotations

import math
import re

from markupsafe import escape

#: what XML 1.0 forbids: C0 controls but tab, newline and return (dropped), lone surrogates
#: and the non-characters U+FFFE, U+FFFF (shown as U+FFFD, the replacement character)
_FORBIDDEN = {
    **dict.fromkeys(c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)),
    **dict.fromkeys([*range(0xD800, 0xE000), 0xFFFE, 0xFFFF], "\ufffd"),
}
#: what :func:`text` must change: XML's special characters and the forbidden ones
_SPECIAL = re.compile(r"[&<>\"'\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TOKEN_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


def text(value: object) -> str:
    """``value`` as escaped XML text or attribute content."""
    plain = value if type(value) is str else str(value)
    if _SPECIAL.search(plain) is None:  # the common case, and 5 times faster
        return plain
    return str(escape(plain.translate(_FORBIDDEN)))


def truncate(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return value if len(value) <= limit else value[: max(limit - 1, 0)] + "…"


def token(value: str) -> str:
    """``value`` as a CSS class fragment: lower-case letters, digits, ``_`` and ``-`` only
    (anything else gives ``unknown``)."""
    value = value.lower()
    return value if value and all(c in _TOKEN_OK for c in value) else "unknown"


def num(value: float) -> str:
    """A coordinate for an attribute: at most one decimal, no trailing zeros."""
    rounded = round(value, 1)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.1f}"


def duration(seconds: float | None, *, compact: bool = True) -> str:
    """A readable duration: ``230 ms``, ``12.3 s``, ``4m 05s``, ``2h 03m`` (``compact``, for
    graphs), or ``4 min 05 s``, ``2 h 03 min`` (pages); ``-`` for None."""
    if seconds is None or not math.isfinite(seconds):
        return "-" if compact else "\u2014"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    m, s, h, d = ("m", "s", "h", "d") if compact else (" min", " s", " h", " d")
    if minutes < 60:
        return f"{minutes}{m} {secs:02d}{s}"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}{h} {minutes:02d}{m}"
    days, hours = divmod(hours, 24)
    return f"{days}{d} {hours:02d}{h}"


def open_svg(kind: str, width: float, height: float, label: str) -> str:
    """The root element's start tag: ``class="gp-svg <kind>"``, size, viewBox, accessible name."""
    w, h = num(max(width, 1)), num(max(height, 1))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="gp-svg {kind}" role="img" '
        f'aria-label="{text(label)}" width="{w}" height="{h}" viewBox="0 0 {w} {h}">'
    )
