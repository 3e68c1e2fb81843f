"""``Schedule``: the three kinds, validation with messages naming the field, cron parsing, and
the ``schedule=`` of ``@pipeline``."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

import glasspane
from glasspane import DefinitionError, pipeline
from glasspane.errors import InvalidArgument
from glasspane.schedules import Schedule, parse_cron, parse_every

# -- the three kinds ---------------------------------------------------------------------------


def test_a_cron_schedule_has_the_documented_defaults() -> None:
    schedule = Schedule(cron="0 3 * * *")
    assert schedule.kind == "cron"
    assert (schedule.name, schedule.timezone, schedule.params) == (None, "UTC", {})
    assert (schedule.catchup, schedule.max_catchup, schedule.max_active) == ("latest", 10, 1)
    assert schedule.paused is False
    assert schedule.parsed_cron.fields == ("0", "3", "*", "*", "*")
    assert str(schedule.zone) == "UTC"


def test_every_and_after_schedules() -> None:
    assert Schedule(every="15m").interval == timedelta(minutes=15)
    assert Schedule(every="15m").kind == "every"
    assert Schedule(after="features").kind == "after"


@pytest.mark.parametrize(
    ("text", "interval"),
    [
        ("30s", timedelta(seconds=30)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        (" 90 M ", timedelta(minutes=90)),
    ],
)
def test_every_takes_a_whole_number_and_a_unit(text: str, interval: timedelta) -> None:
    assert parse_every(text) == interval


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("15x", "every `15x` is not an interval; write a whole number and a unit: `30s`, "),
        ("1.5h", "every `1.5h` is not an interval"),
        ("1h30m", "every `1h30m` is not an interval"),
        ("0m", "every `0m` must be longer than zero"),
    ],
)
def test_a_bad_interval_is_rejected(text: str, message: str) -> None:
    with pytest.raises(DefinitionError) as info:
        Schedule(every=text)
    assert str(info.value).startswith(f"invalid schedule: {message}")


def test_a_schedule_is_immutable() -> None:
    schedule = Schedule(cron="0 3 * * *")
    with pytest.raises(Exception, match="frozen"):
        schedule.cron = "0 4 * * *"  # type: ignore[misc]


# -- validation --------------------------------------------------------------------------------


def _message(**fields: object) -> str:
    with pytest.raises(DefinitionError) as info:
        Schedule(**fields)
    return str(info.value)


def test_exactly_one_kind() -> None:
    assert _message(cron="0 3 * * *", every="1h").startswith(
        "invalid schedule: a schedule takes exactly one of `cron`, `every` or `after` "
        "(got `cron` and `every`), e.g. "
    )
    assert "(got none)" in _message(name="x")


def test_a_timezone_is_validated_and_suggests_close_names() -> None:
    assert _message(cron="0 3 * * *", timezone="Europe/Berln").startswith(
        "invalid schedule: timezone `Europe/Berln` is not a known IANA time zone; did you mean "
        "`Europe/Berlin`"
    )
    assert "not a known IANA time zone" in _message(cron="0 3 * * *", timezone="../etc/passwd")


def test_only_cron_schedules_take_a_timezone() -> None:
    assert _message(every="1d", timezone="Europe/Berlin") == (
        "invalid schedule: `timezone` applies to cron schedules only (got `Europe/Berlin` with "
        "`every`); `every` intervals are aligned to the UTC epoch: for a run at a local time "
        'write a cron expression, e.g. `Schedule(cron="0 0 * * *", timezone=...)`'
    )


def test_unknown_options_and_bad_values_are_named() -> None:
    assert _message(name="nightly", cron="0 3 * * *", cathcup="all").startswith(
        "invalid schedule `nightly`: `cathcup` is not an option (did you mean `catchup`?); "
        "a Schedule takes name, cron, every, after, timezone, params, catchup, "
    )
    assert _message(cron="0 3 * * *", catchup="some") == (
        "invalid schedule: `catchup`: Input should be 'none', 'latest' or 'all' (got 'some')"
    )
    assert _message(cron="0 3 * * *", max_active=0) == (
        "invalid schedule: `max_active`: Input should be greater than or equal to 1 (got 0)"
    )
    assert _message(after=" ") == "invalid schedule: `after`: must not be empty; give a name"


def test_params_must_be_json_values() -> None:
    assert _message(cron="0 3 * * *", params={"when": object()}).startswith(
        "invalid schedule: params must be JSON values (strings, numbers, booleans, None, and "
        "lists and dicts of them) so that they can be stored with the schedule: "
    )
    assert Schedule(cron="0 3 * * *", params={"grid": [0.1, 1.0]}).params == {"grid": [0.1, 1.0]}


# -- cron expressions --------------------------------------------------------------------------

HELP = "; write five fields: minute (0-59) hour (0-23)"


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 25 * * *", "cron `0 25 * * *`: hour 25 is out of range 0-23"),
        ("61 * * * *", "cron `61 * * * *`: minute 61 is out of range 0-59"),
        ("0 0 32 * *", "cron `0 0 32 * *`: day-of-month 32 is out of range 1-31"),
        ("0 0 0 * *", "cron `0 0 0 * *`: day-of-month 0 is out of range 1-31"),
        ("0 0 * 13 *", "cron `0 0 * 13 *`: month 13 is out of range 1-12"),
        ("0 0 * * 8", "cron `0 0 * * 8`: day-of-week 8 is out of range 0-7"),
        ("0 1-30 * * *", "cron `0 1-30 * * *`: hour 30 is out of range 0-23"),
        (
            "*/0 * * * *",
            "cron `*/0 * * * *`: minute step `/0` must be a whole number of at least 1",
        ),
        ("0 3 * *", "cron `0 3 * *` has 4 fields"),
        ("0 0 3 * * *", "cron `0 0 3 * * *` has 6 fields"),
        ("zz * * * *", "cron `zz * * * *`: minute field `zz` is not valid"),
        ("0 0 * * mon-xyz", "cron `0 0 * * mon-xyz`: day-of-week field `mon-xyz` is not valid"),
        ("H * * * *", "cron `H * * * *`: minute field `H` uses `H` (hashed values)"),
        (
            "0 0 30 2 *",
            "cron `0 0 30 2 *` never fires: day(s) [30] can never occur in month(s) [2]",
        ),
    ],
)
def test_an_invalid_cron_is_rejected_naming_the_field(cron: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_cron(cron)
    assert str(info.value).startswith(message)
    assert HELP in str(info.value)
    assert _message(cron=cron).startswith(f"invalid schedule: {message}")


@pytest.mark.parametrize(
    "cron",
    ["@daily", "@hourly", "0 3 * * mon-fri", "0 0 L * *", "0 9 * * 1#1", "*/7 * * * *",
     "0 0 29 2 *", "0 0 * * 7", "0 12 * jan,jul *", "15 10 1W * *", "0 0 * * thu"],
)  # fmt: skip
def test_valid_crons_are_accepted(cron: str) -> None:
    assert Schedule(cron=cron).cron == cron


def test_every_hour_tells_real_time_schedules_from_wall_clock_ones() -> None:
    assert parse_cron("*/15 * * * *").every_hour
    assert parse_cron("0 0-23 * * *").every_hour
    assert not parse_cron("0 */2 * * *").every_hour
    assert not parse_cron("@daily").every_hour


def test_a_wrong_answer_from_croniter_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime

    import croniter

    monkeypatch.setattr(
        croniter.croniter, "get_next", lambda self, *a, **k: datetime(2024, 1, 1, 3, 1)
    )
    cron = parse_cron("0 3 * * *")
    with pytest.raises(glasspane.GlasspaneError, match="which does not follow the expression"):
        next(cron.walls_after(datetime(2024, 1, 1)))


# -- describe ----------------------------------------------------------------------------------


def test_describe() -> None:
    schedule = Schedule(
        name="retrain", cron="0 3 * * 1-5", timezone="Europe/Berlin", params={"n_rows": 500}
    )
    assert schedule.describe() == (
        "retrain: cron `0 3 * * 1-5` in Europe/Berlin (minute 0, hour 3, day-of-week 1-5); "
        "catch-up latest; at most 1 active run; params n_rows=500"
    )
    assert Schedule(name="poll", every="90m", catchup="all", max_active=2).describe() == (
        "poll: every 90 minutes (multiples of it since 1970-01-01 00:00 UTC); catch-up all "
        "(at most 10); at most 2 active runs"
    )
    assert Schedule(name="t", after="features", paused=True).describe() == (
        "t: after each successful run of pipeline `features`; at most 1 active run; paused"
    )


# -- @pipeline(schedule=...) ------------------------------------------------------------------


def test_a_cron_string_becomes_a_schedule_named_after_the_pipeline() -> None:
    @pipeline(name="nightly", schedule="0 3 * * *")
    def retrain(n_rows: int = 10) -> None: ...

    assert retrain.schedule == Schedule(name="nightly", cron="0 3 * * *")


def test_a_schedule_keeps_its_name_and_gets_the_pipelines_otherwise() -> None:
    @pipeline(schedule=Schedule(every="1h", params={"n_rows": 5}))
    def retrain(n_rows: int = 10) -> None: ...

    @pipeline(schedule=Schedule(name="weekdays", cron="0 3 * * 1-5"))
    def other() -> None: ...

    assert retrain.schedule == Schedule(name="retrain", every="1h", params={"n_rows": 5})
    assert other.schedule is not None and other.schedule.name == "weekdays"


def test_a_bad_cron_fails_at_decoration_naming_the_pipeline_and_the_field() -> None:
    with pytest.raises(DefinitionError) as info:

        @pipeline(schedule="61 * * * *")
        def retrain() -> None: ...

    assert str(info.value).startswith(
        "pipeline `retrain`: invalid schedule `retrain`: cron `61 * * * *`: minute 61 is out of "
        "range 0-59; write five fields: "
    )


def test_schedule_params_are_checked_against_the_pipeline() -> None:
    with pytest.raises(DefinitionError) as info:

        @pipeline(schedule=Schedule(cron="0 3 * * *", params={"n_rowz": 5}))
        def retrain(n_rows: int = 10) -> None: ...

    assert str(info.value) == (
        "pipeline `retrain`: the params of schedule `retrain` do not fit: unknown parameter "
        "`n_rowz` for pipeline `retrain`; it takes: n_rows: int = 10; set them in "
        "`Schedule(params={...})`"
    )
    with pytest.raises(DefinitionError, match="`n_rows` is required"):

        @pipeline(schedule="0 3 * * *")
        def needs(n_rows: int) -> None: ...


def test_a_pipeline_cannot_run_after_itself_nor_take_another_type() -> None:
    with pytest.raises(DefinitionError, match="pipeline `loop`: its schedule runs it after"):

        @pipeline(schedule=Schedule(after="loop"))
        def loop() -> None: ...

    with pytest.raises(DefinitionError, match="pipeline `odd`: got int 5; pass a cron"):

        @pipeline(schedule=5)  # type: ignore[arg-type]
        def odd() -> None: ...


def test_schedule_is_exported_and_croniter_loads_only_to_parse_a_cron() -> None:
    code = (
        "import sys, glasspane\n"
        "assert 'glasspane.schedules' not in sys.modules\n"
        "@glasspane.pipeline(schedule=glasspane.Schedule(every='1h'))\n"
        "def p(): ...\n"
        "assert 'croniter' not in sys.modules\n"
        "glasspane.Schedule(cron='0 3 * * *')\n"
        "assert 'croniter' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert "Schedule" in glasspane.__all__
