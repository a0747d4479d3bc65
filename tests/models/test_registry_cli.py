"""`churn models list | show | promote | rollback | history` on a registry with a champion and a challenger."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from churn.cli import app
from churn.dev.synthetic import write_modeling
from churn.models.registry import Registry
from churn.models.train import retrain
from tests.models.conftest import PER_DAY, RUN_DATE

runner = CliRunner()


@pytest.fixture()
def two_versions(local_copy):
    """The trained champion plus a challenger trained on shuffled labels."""
    write_modeling(local_copy.settings, RUN_DATE, PER_DAY, shuffle_labels=True)
    challenger = retrain(RUN_DATE, local_copy.settings)
    assert not challenger["promoted"]
    return local_copy.result["version"], challenger["version"], Registry(local_copy.settings)


def _run(*args):
    result = runner.invoke(app, ["models", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_list_show_promote_rollback(two_versions):
    champion, challenger, registry = two_versions
    code, out = _run("list")
    assert code == 0 and champion in out and challenger in out

    code, out = _run("show")  # default: the champion, verified
    shown = json.loads(out)
    assert code == 0 and shown["version"] == champion and shown["verified"]
    assert shown["artifacts"] == {k: v["sha256"] for k, v in registry.metadata(champion)["artifacts"].items()}

    code, out = _run("promote", "challenger", "--reason", "incident drill", "--yes")
    assert code == 0, out
    assert registry.alias("champion")["version"] == challenger and registry.alias("challenger") is None

    code, out = _run("rollback", "--reason", "drill over", "--yes")
    assert code == 0, out
    assert registry.alias("champion")["version"] == champion
    events = [(e["event"], e["version"], e.get("previous_champion")) for e in registry.history()]
    assert events == [("promote", champion, None), ("challenger", challenger, None),
                      ("promote", challenger, champion), ("rollback", champion, challenger)]
    code, out = _run("rollback", "--reason", "again", "--yes")  # the first champion has no predecessor
    assert code == 1 and "no recorded predecessor" in out
    code, out = _run("history")
    assert code == 0 and "rollback" in out


def test_promoting_a_damaged_or_unknown_version_is_refused(two_versions):
    champion, challenger, registry = two_versions
    code, out = _run("promote", "2020-01-01-deadbeef", "--reason", "test", "--yes")
    assert code == 1 and "does not exist" in out
    path = registry.artifact_path(challenger, "transform.json")
    with open(path, "a") as handle:
        handle.write(" ")
    code, out = _run("promote", challenger, "--reason", "test", "--yes")
    assert code == 1 and "altered" in out
    assert registry.alias("champion")["version"] == champion
    code, out = _run("show", challenger)
    assert code == 1 and "transform.json" in out


def test_show_without_champion_is_a_clear_error(empty_local):
    code, out = _run("show")
    assert code == 1 and "no champion" in out


def test_history_and_list_fit_80_columns_and_answer_json(tmp_path):
    import json as _json
    from datetime import date

    from typer.testing import CliRunner

    from churn.cli import app
    from churn.core.settings import Settings
    from churn.dev.synthetic import write_modeling
    from churn.models.train import retrain

    settings = Settings(_env_file=None, warehouse=str(tmp_path), training_window_days=14, validation_days=7)
    write_modeling(settings, date(2026, 3, 2), 100)
    retrain(date(2026, 3, 2), settings)
    env = {"CHURN_WAREHOUSE": str(tmp_path), "CHURN_TRAINING_WINDOW_DAYS": "14", "CHURN_VALIDATION_DAYS": "7",
           "COLUMNS": "80"}
    runner = CliRunner()
    for command in (["models", "history"], ["models", "list"]):
        shown = runner.invoke(app, command, env=env, terminal_width=80)
        assert shown.exit_code == 0, shown.output
        assert shown.stdout.strip() and all(len(line) <= 80 for line in shown.stdout.splitlines()), shown.stdout
        records = _json.loads(runner.invoke(app, [*command, "--json"], env=env).stdout)
        assert records and all("version" in r for r in records)
    history = runner.invoke(app, ["models", "history"], env=env, terminal_width=80).stdout.splitlines()
    assert len(history) <= 4 * len(records)  # one line per event and its reason, never a column of characters
