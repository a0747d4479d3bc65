"""Days a person types: only YYYY-MM-DD; and "no data" errors say which days exist."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from typer.testing import CliRunner

from churn.cli import app
from churn.core.dates import DateRangeError, nearest_days, parse_day, parse_range


@pytest.mark.parametrize("text", ["20261120", "2026-3-1", "2026-03-01x", "03/01/2026", "2026-03-01T00:00"])
def test_only_year_month_day_with_dashes_is_a_day(text):
    with pytest.raises(DateRangeError, match="use YYYY-MM-DD"):
        parse_day(text, "--ds")


def test_a_day_that_is_not_in_the_calendar_says_why():
    with pytest.raises(DateRangeError, match=r"--start '2026-13-01' is not a date of the calendar \(month"):
        parse_range(start="2026-13-01", end="2026-12-01")
    assert parse_range(ds="2026-02-28") == (date(2026, 2, 28), date(2026, 2, 28))


@pytest.mark.parametrize("args", [["simulate", "--start", "2026-13-01", "--days", "5"],
                                  ["features", "--ds", "20261120"], ["train", "--run-date", "2026/11/20"],
                                  ["doctor", "--ds", "2026-11-31"]])
def test_the_commands_refuse_a_malformed_day_in_one_line_before_any_work(args, tmp_path):
    result = CliRunner().invoke(app, args, env={"CHURN_WAREHOUSE": str(tmp_path / "none")})
    assert result.exit_code == 2, result.output
    assert "is not a date" in result.output and "a bug" not in result.output
    assert not (tmp_path / "none").exists()  # nothing started, nothing written


def test_nearest_days_names_the_range_held_and_the_closest_days():
    held = [date(2026, 1, 1) + timedelta(days=i) for i in range(60)]
    text = nearest_days([date(2026, 4, 10)], held)
    assert text == "days held: 2026-01-01..2026-03-01 (60 days); nearest: 2026-02-28, 2026-03-01"
    assert nearest_days([date(2026, 4, 10)], []) == "no day is held yet"


def test_a_partition_that_is_not_published_names_the_days_that_are(tmp_path):
    from churn.core.settings import Settings
    from churn.core.tables import INSTANCES_MODELING
    from churn.core.warehouse import PartitionNotFound, read_partitions
    from churn.dev.synthetic import write_modeling

    settings = Settings(_env_file=None, warehouse=str(tmp_path), training_window_days=14, validation_days=7)
    write_modeling(settings, date(2026, 3, 2), 20)
    with pytest.raises(PartitionNotFound, match=r"dt=2026-05-01 is not published; days held: 2026-02-1\d\.\.2026-03-01"
                       r" \(\d+ days\); nearest: 2026-02-28, 2026-03-01"):
        read_partitions(INSTANCES_MODELING, [date(2026, 5, 1)], settings, missing_ok=False)
