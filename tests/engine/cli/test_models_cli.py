"""`glasspane models list|show|promote|alias rm` from a shell."""

from __future__ import annotations

from pathlib import Path

from cli_harness import Cli, assert_usage_error
from sklearn.linear_model import LogisticRegression

import glasspane
from glasspane import pipeline, task
from glasspane.config import Settings


@task
def fit(c: float, alias: str = "") -> float:
    model = LogisticRegression(C=c).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    glasspane.register_model("churn", model, alias=alias or None, metadata={"C": c})
    return c


@pipeline
def retrain(c: float = 1.0, alias: str = ""):
    return fit(c, alias)


def _registered(home: Path) -> list[str]:
    """Two versions of ``churn``, version 1 the champion, registered in this process (which
    shares the commands' home); the ids of the two runs."""
    with glasspane.Workspace(Settings(home=home)) as ws:
        first = ws.run(retrain, {"c": 0.5, "alias": "champion"}, executor="inline")
        second = ws.run(retrain, {"c": 2.0}, executor="inline")
    return [first.run_id, second.run_id]


def test_list_and_show_the_versions_with_their_runs(cli: Cli, glasspane_home: Path) -> None:
    assert cli("models", "list").stdout.startswith("no model is registered yet")
    first, second = _registered(glasspane_home)
    listed = cli("models", "list")
    assert listed.stdout.splitlines()[1].split() == ["churn", "2", "2", "champion=1"]
    (entry,) = cli("models", "list", "--json").json()
    assert (entry["latest"], entry["aliases"]) == (2, {"champion": 1})
    shown = cli("models", "show", "churn").stdout.splitlines()
    assert shown[1].split()[:4] == ["2", "-", second, "fit"]
    assert shown[2].split()[:4] == ["1", "champion", first, "fit"]
    versions = cli("models", "show", "churn", "--json").json()
    assert [v["meta"] for v in versions] == [{"C": 2.0}, {"C": 0.5}]


def test_promote_and_remove_an_alias(cli: Cli, glasspane_home: Path) -> None:
    _registered(glasspane_home)
    promoted = cli("models", "promote", "churn", "2", "--alias", "champion")
    assert promoted.code == 0
    assert promoted.stdout == "churn@champion -> version 2 (it named version 1)\n"
    assert cli("models", "promote", "churn", "1", "--alias", "staging").code == 0
    removed = cli("models", "alias", "rm", "churn", "staging")
    assert removed.stdout == "removed churn@staging (it named version 1)\n"
    assert cli("models", "list", "--json").json()[0]["aliases"] == {"champion": 2}


def test_mistakes_are_one_line_with_what_there_is(cli: Cli, glasspane_home: Path) -> None:
    _registered(glasspane_home)
    assert_usage_error(
        cli("models", "promote", "churn", "9", "--alias", "champion"),
        "model `churn` has no version 9 (its versions: 1 to 2)",
    )
    assert_usage_error(
        cli("models", "show", "chrun"),
        "no model `chrun` is registered (registered: `churn`)",
    )
    assert_usage_error(
        cli("models", "alias", "rm", "churn", "gold"),
        "model `churn` has no alias `gold` (its aliases: champion)",
    )
    assert_usage_error(
        cli("models", "promote", "churn", "1", "--alias", "7"),
        "alias '7' is a number: an alias names a version, use a word",
    )
