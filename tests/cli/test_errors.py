"""Every expected CLI mistake ends with one line on stderr that says what to do, and its exit code:
2 for bad input (arguments, dates, settings, SQL, a warehouse that does not exist), 1 for a failed run."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

import pytest

from churn.core.iceberg_catalog import recover
from churn.core.settings import Settings
from churn.dev.synthetic import write_modeling

RUN_DATE = date(2026, 3, 2)


def churn(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    """The real entry point (churn.cli:main) in a fresh process, as a shell runs it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CHURN_", "AWS_"))}
    return subprocess.run([sys.executable, "-c", "from churn.cli import main; main()", *args],
                          env=clean | env, capture_output=True, text=True, timeout=300, input=stdin)


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one error line; logs may precede it, a traceback may not."""
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3, result.stderr  # at most a log line or two before it
    return errors[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A warehouse with a champion and nothing else."""
    from churn.models.train import retrain

    root = tmp_path_factory.mktemp("trained") / "warehouse"
    settings = Settings(_env_file=None, warehouse=str(root), training_window_days=14, validation_days=7)
    write_modeling(settings, RUN_DATE, 100)
    retrain(RUN_DATE, settings)
    return {"CHURN_WAREHOUSE": str(root), "CHURN_TRAINING_WINDOW_DAYS": "14", "CHURN_VALIDATION_DAYS": "7"}


@pytest.fixture()
def empty(tmp_path):
    (tmp_path / "warehouse").mkdir()
    return {"CHURN_WAREHOUSE": str(tmp_path / "warehouse")}


@pytest.mark.parametrize(("args", "code", "says"), [
    (["features", "--ds", "2026-13-01"], 2, "'2026-13-01' is not a date of the calendar"),
    (["score", "--start", "2026-03-05", "--end", "2026-03-01"], 2, "--end 2026-03-01 is before --start 2026-03-05"),
    (["score", "--ds", "2026-03-01", "--start", "2026-03-01"], 2, "give either --ds or --start/--end, not both"),
    (["train", "--run-date", "yesterday"], 2, "'yesterday' is not a date"),
    (["score", "--ds", "2026-03-01"], 1, "no champion model under"),
    (["train", "--run-date", "2026-03-01"], 1, "no training data for run date 2026-03-01"),
    (["query", "SELECT * FROM churn.nope"], 2, "unknown table churn.nope; available tables: churn.evaluations"),
    (["features", "--ds", "2026-03-01", "--table", "nope"], 2, "unknown feature table(s) ['nope']"),
    (["scroe", "--ds", "2026-03-01"], 2, "No such command 'scroe'"),
])
def test_mistakes_on_an_empty_warehouse(empty, args, code, says):
    result = churn(*args, env=empty)
    assert result.returncode == code, result.stderr
    assert says in error_line(result)


def test_a_day_that_is_not_built_is_one_line(trained):
    result = churn("score", "--ds", "2026-03-09", env=trained)
    assert result.returncode == 1, result.stderr
    assert "instances_w1" in error_line(result) and "2026-03-09" in error_line(result)


def test_an_invalid_setting_is_bad_input(empty):
    result = churn("models", "list", env=empty | {"CHURN_SEED": "abc"})
    assert result.returncode == 2
    assert "invalid setting: CHURN_SEED" in error_line(result)


@pytest.mark.parametrize("args", [["models", "list"], ["models", "history"], ["score", "--ds", "2026-03-01"],
                                  ["query", "SELECT 1"], ["monitor", "--ds", "2026-03-01"]])
def test_a_warehouse_that_does_not_exist_is_an_error_not_an_empty_answer(tmp_path, args):
    result = churn(*args, env={"CHURN_WAREHOUSE": str(tmp_path / "typo")})
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"warehouse {tmp_path / 'typo'} does not exist: check CHURN_WAREHOUSE" in error_line(result)
    assert result.stdout == ""


def test_missing_aws_credentials_are_one_line(tmp_path):
    env = {"CHURN_WAREHOUSE": "s3://churn-no-credentials/prod", "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    result = churn("models", "list", env=env)
    assert result.returncode == 1, result.stderr
    assert "no AWS credentials" in error_line(result)


def test_verbose_shows_the_traceback(empty):
    result = churn("--verbose", "score", "--ds", "2026-03-01", env=empty)
    assert result.returncode != 0 and "Traceback" not in result.stderr  # expected errors stay one line
    result = churn("--verbose", "models", "list", env={"CHURN_WAREHOUSE": "/nonexistent/typo"})
    assert result.returncode == 1 and "Traceback" in result.stderr and "WarehouseNotFound" in result.stderr


def test_promote_and_rollback_ask_first_and_record_who_when_why(trained, tmp_path):
    import shutil

    from churn.models.registry import Registry

    root = tmp_path / "warehouse"
    shutil.copytree(trained["CHURN_WAREHOUSE"], root)
    env = trained | {"CHURN_WAREHOUSE": str(root)}
    settings = Settings(_env_file=None, warehouse=str(root), training_window_days=14, validation_days=7)
    recover(settings)  # the copy's own tables
    first = Registry(settings).alias("champion")["version"]
    write_modeling(settings, date(2026, 3, 9), 100, seed=5)
    from churn.models.train import retrain

    retrain(date(2026, 3, 9), settings)
    second = Registry(settings).alias("champion")["version"]
    assert second != first

    missing_reason = churn("models", "rollback", "--yes", env=env)
    assert missing_reason.returncode == 2 and "Missing option '--reason'" in error_line(missing_reason)
    unconfirmed = churn("models", "rollback", "--reason", "AUC fell on Monday", env=env, stdin="")
    assert unconfirmed.returncode == 2 and "add --yes" in error_line(unconfirmed)
    assert Registry(settings).alias("champion")["version"] == second  # nothing changed

    done = churn("models", "rollback", "--reason", "AUC fell on Monday", "--yes", env=env)
    assert done.returncode == 0, done.stderr
    event = Registry(settings).history()[-1]
    assert (event["event"], event["version"], event["previous_champion"]) == ("rollback", first, second)
    assert event["reason"].startswith("AUC fell on Monday") and "@" in event["by"] and event["at"]
    promoted = churn("models", "promote", second, "--reason", "fixed upstream", "-y", env=env)
    assert promoted.returncode == 0, promoted.stderr
    assert Registry(settings).history()[-1]["by"] == event["by"]
    history = churn("models", "history", env=env | {"COLUMNS": "200"})
    assert "fixed upstream" in history.stdout and event["by"] in history.stdout


def test_the_aws_sdks_info_lines_are_quiet_in_the_cli(tmp_path):
    import logging

    from typer.testing import CliRunner

    from churn.cli import QUIET_LOGGERS, app

    logging.getLogger("botocore.credentials").setLevel(logging.NOTSET)
    CliRunner().invoke(app, ["models", "list"], env={"CHURN_WAREHOUSE": str(tmp_path)})
    assert "botocore" in QUIET_LOGGERS
    assert not logging.getLogger("botocore.credentials").isEnabledFor(logging.INFO)
    assert logging.getLogger("churn.train").level == logging.NOTSET  # our own lines keep the level asked for
