"""What ``glasspane schedule`` and ``glasspane backfill`` print: JSON records of schedules,
their fire times and ticks, and the same as rich tables.

Fire times are stored and compared in UTC; people read them in the schedule's zone, so both
are shown wherever the two differ (``2026-03-30 03:00 CEST (01:00 UTC)``). JSON carries
ISO 8601 strings with their offsets: ``utc`` in UTC, ``local`` in the schedule's zone.
"""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..schedules import Schedule, zone_of
from ..scheduling import schedule_of

UTC = timezone.utc
TICK_STYLE = {"launched": "green", "skipped": "yellow", "failed": "red", "claimed": "cyan"}


def iso(value: datetime | None) -> str | None:
    """An ISO 8601 string of a stored (aware) datetime, or None."""
    return value.isoformat() if value is not None else None


def _clock(seconds: bool) -> str:
    return "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"


def utc_text(value: datetime | None, seconds: bool = False) -> str:
    """``2026-03-30 01:00 UTC`` (with ``seconds``: ``01:00:00``); empty for None."""
    if value is None:
        return ""
    return f"{value.astimezone(UTC).strftime(_clock(seconds or bool(value.second)))} UTC"


def local_text(value: datetime | None, zone: tzinfo, seconds: bool = False) -> str:
    """``2026-03-30 03:00 CEST`` (the zone's abbreviation); empty for None."""
    if value is None:
        return ""
    return value.astimezone(zone).strftime(_clock(seconds or bool(value.second)) + " %Z")


def both_text(value: datetime, zone: tzinfo, seconds: bool = False) -> str:
    """``2026-03-30 03:00 CEST (2026-03-30 01:00 UTC)``, or ``2026-03-30 01:00 UTC`` in a
    UTC zone; seconds are shown when ``seconds`` or when the instant has some."""
    if str(zone) == "UTC":
        return utc_text(value, seconds)
    return f"{local_text(value, zone, seconds)} ({utc_text(value, seconds)})"


def fire_time(value: datetime, zone: tzinfo) -> dict[str, str]:
    """A fire time in JSON: ``{"utc": ..., "local": ...}``."""
    return {"utc": value.astimezone(UTC).isoformat(), "local": value.astimezone(zone).isoformat()}


def when_text(spec: Schedule | dict[str, Any]) -> str:
    """``cron 0 3 * * * Europe/Berlin``, ``every 1h`` or ``after features``, from a
    schedule or its record."""
    get = spec.get if isinstance(spec, dict) else lambda key: getattr(spec, key)
    if get("cron") is not None:
        return f"cron {get('cron')} {get('timezone')}"
    if get("every") is not None:
        return f"every {get('every')}"
    return f"after {get('after')}"


def schedule_record(row: dict[str, Any], active_runs: int) -> dict[str, Any]:
    """A stored schedule as JSON: its definition, state, next and last fire times."""
    schedule = schedule_of(row)
    paused = bool(row["paused"])
    next_fire = None if paused else row.get("next_fire_at")
    return {
        "name": row["name"],
        "pipeline": row["pipeline_ref"].rpartition(":")[2],
        "pipeline_ref": row["pipeline_ref"],
        "kind": schedule.kind,
        "cron": schedule.cron,
        "every": schedule.every,
        "after": schedule.after,
        "timezone": schedule.timezone,
        "params": schedule.params,
        "catchup": schedule.catchup,
        "max_catchup": schedule.max_catchup,
        "max_active": schedule.max_active,
        "state": "paused" if paused else "active",
        "next_fire": fire_time(next_fire, schedule.zone) if next_fire else None,
        "last_fire": fire_time(row["last_fire_at"], schedule.zone)
        if row.get("last_fire_at")
        else None,
        "active_runs": active_runs,
        "created_at": iso(row.get("created_at")),
        "updated_at": iso(row.get("updated_at")),
        "description": schedule.describe(),
    }


def tick_record(tick: dict[str, Any], zone: tzinfo) -> dict[str, Any]:
    """A tick as JSON: the fire time, its outcome, the run it launched and why not."""
    return {
        "fire_at": fire_time(tick["fire_at"], zone),
        "outcome": tick["state"],
        "run_id": tick.get("run_id"),
        "reason": tick.get("reason"),
        "evaluated_at": iso(tick.get("updated_at") or tick.get("created_at")),
    }


def trigger_record(trigger: dict[str, Any]) -> dict[str, Any]:
    """An ``after`` schedule's trigger as JSON: the upstream run, the outcome, the run it
    launched and why not."""
    return {
        "upstream_run_id": trigger["upstream_run_id"],
        "outcome": trigger["state"],
        "run_id": trigger.get("run_id"),
        "reason": trigger.get("reason"),
        "evaluated_at": iso(trigger.get("updated_at") or trigger.get("created_at")),
    }


def _table(title: str) -> Table:
    return Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
        padding=(0, 1, 0, 0),
    )  # fmt: skip


def _at(value: dict[str, str]) -> datetime:
    """The instant of a :func:`fire_time` record."""
    return datetime.fromisoformat(value["utc"])


#: schedules_table's columns, and the order they are left out in when the terminal is narrow
_COLUMNS = ("name", "pipeline", "when", "state", "next fire", "last fire", "active")
_OPTIONAL = ("last fire", "active", "pipeline")


def schedules_table(records: list[dict[str, Any]], width: int = 80) -> Table:
    """One row per schedule: name, pipeline, when, state, next fire (in UTC, and in the
    schedule's zone beneath), last fire and active runs, fitted to ``width`` columns by
    leaving out the optional ones."""
    rows = []
    for r in records:
        zone = zone_of(r["timezone"])
        nxt = _at(r["next_fire"]) if r["next_fire"] else None
        if r["kind"] == "after":
            shown_next = "" if r["state"] == "paused" else f"after {r['after']}\nsucceeds"
        elif nxt is None:
            shown_next = ""
        elif r["timezone"] == "UTC":
            shown_next = utc_text(nxt)
        else:
            shown_next = f"{utc_text(nxt)}\n{local_text(nxt, zone)}"
        when = f"cron {r['cron']}\n{r['timezone']}" if r["kind"] == "cron" else when_text(r)
        rows.append(
            {
                "name": r["name"],
                "pipeline": r["pipeline"],
                "when": when,
                "state": r["state"],
                "next fire": shown_next,
                "last fire": utc_text(_at(r["last_fire"])) if r["last_fire"] else "",
                "active": str(r["active_runs"]),
            }
        )
    # each column takes its widest line plus two characters (a rule and the padding); names
    # fold onto more lines beyond 16 characters
    needed = {
        c: max(len(line) for text in [c, *(row[c] for row in rows)] for line in text.split("\n"))
        + 2
        for c in _COLUMNS
    }
    for c in ("name", "pipeline"):
        needed[c] = min(needed[c], 18)
    shown = list(_COLUMNS)
    for c in _OPTIONAL:
        if sum(needed[name] for name in shown) <= width:
            break
        shown.remove(c)
    table = _table("schedules")
    for c in shown:
        folds = c in ("name", "pipeline")
        table.add_column(
            c,
            overflow="fold" if folds else "ellipsis",
            no_wrap=not folds,
            min_width=needed[c] - 2,
            justify="right" if c == "active" else "left",
        )
    for row in rows:
        style = "yellow" if row["state"] == "paused" else "green"
        table.add_row(*(Text(row[c], style=style) if c == "state" else row[c] for c in shown))
    return table


def fire_times_table(title: str, times: list[datetime], zone: tzinfo) -> Table:
    """Fire times, one a row: in the schedule's zone and in UTC (once for a UTC schedule)."""
    table = _table(title)
    table.add_column("#", justify="right")
    if str(zone) != "UTC":
        table.add_column(f"{zone}", no_wrap=True)
    table.add_column("UTC", no_wrap=True)
    seconds = any(value.second for value in times)  # every-30s schedules: keep them aligned
    for index, value in enumerate(times, 1):
        local = [local_text(value, zone, seconds)] if str(zone) != "UTC" else []
        table.add_row(str(index), *local, utc_text(value, seconds))
    return table


def ticks_table(title: str, ticks: list[dict[str, Any]], zone: tzinfo) -> Table:
    """Ticks, latest first: fire time, outcome, run id and reason."""
    table = _table(title)
    table.add_column("fire time", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    table.add_column("run", no_wrap=True)
    table.add_column("reason", overflow="fold")
    seconds = any(_at(tick["fire_at"]).second for tick in ticks)
    for tick in ticks:
        table.add_row(
            both_text(_at(tick["fire_at"]), zone, seconds),
            Text(tick["outcome"], style=TICK_STYLE.get(tick["outcome"], "")),
            tick["run_id"] or "",
            Text(tick["reason"] or ""),
        )
    return table


def triggers_table(title: str, triggers: list[dict[str, Any]]) -> Table:
    """An ``after`` schedule's upstream runs, latest first: outcome, run id and reason."""
    table = _table(title)
    for column in ("upstream run", "outcome", "run"):
        table.add_column(column, no_wrap=True)
    table.add_column("reason", overflow="fold")
    for trigger in triggers:
        outcome = Text(trigger["outcome"], style=TICK_STYLE.get(trigger["outcome"], ""))
        run_id, reason = trigger["run_id"] or "", Text(trigger["reason"] or "")
        table.add_row(trigger["upstream_run_id"], outcome, run_id, reason)
    return table


def print_schedule(console: Console, record: dict[str, Any]) -> None:
    """``schedule show``: the definition, then the next fire times and the latest ticks."""
    zone = zone_of(record["timezone"])
    lines = [
        ("schedule", record["name"]),
        ("pipeline", record["pipeline_ref"]),
        ("when", record["description"].partition(": ")[2]),
        ("state", record["state"]),
        ("active runs", f"{record['active_runs']} (at most {record['max_active']})"),
    ]
    if record["last_fire"]:
        lines.append(("last fire", both_text(_at(record["last_fire"]), zone)))
    for key, value in lines:
        console.print(f"{key + ':':<13}{value}", markup=False, soft_wrap=True)
    console.print()
    upcoming = [_at(t) for t in record["upcoming"]]
    if record["kind"] == "after":
        console.print(f"fires after each successful run of pipeline `{record['after']}`")
    else:
        note = " (paused: as if resumed now)" if record["state"] == "paused" else ""
        console.print(fire_times_table(f"next fire times{note}", upcoming, zone))
    console.print()
    if record["ticks"]:
        console.print(ticks_table(f"latest {len(record['ticks'])} ticks", record["ticks"], zone))
    elif record["kind"] == "after" and record["triggers"]:
        count = len(record["triggers"])
        console.print(triggers_table(f"latest {count} upstream runs", record["triggers"]))
    elif record["kind"] == "after":
        console.print(
            f"no successful run of `{record['after']}` has triggered it yet",
            markup=False,
        )
    else:
        console.print("no ticks yet: the scheduler has evaluated none of its fire times")
