"""`churn simulate`: writes where the settings say, prints a summary, refuses to overwrite."""

from __future__ import annotations

import os

from typer.testing import CliRunner

from churn.cli import app
from churn.core.settings import Settings


def test_simulate_command(warehouse, tmp_path):
    target = tmp_path / "other"
    args = ["simulate", "--warehouse", str(target), "--start", "2026-02-02", "--days", "3",
            "--instances-per-day", "5", "--seed", "3", "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "instances" in result.output and "conversion" in result.output
    assert (target / "raw" / "evaluations").exists()  # --warehouse chose where this command writes ...
    assert Settings().warehouse == warehouse.warehouse and os.environ["CHURN_WAREHOUSE"] == warehouse.warehouse
    assert not os.path.exists(os.path.join(warehouse.warehouse, "raw"))  # ... and nothing else changed
    assert sorted(os.listdir(target / "raw" / "events")) == ["dt=2026-02-02", "dt=2026-02-03", "dt=2026-02-04"]

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1
    assert str(target / "raw" / "evaluations") in again.output and "--overwrite" in again.output

    replaced = CliRunner().invoke(app, [*args, "--overwrite", "--days", "2"])
    assert replaced.exit_code == 0, replaced.output
    assert sorted(os.listdir(target / "raw" / "events")) == ["dt=2026-02-02", "dt=2026-02-03"]


def test_default_start_ends_the_world_today(warehouse):
    from datetime import UTC, datetime, timedelta

    result = CliRunner().invoke(app, ["simulate", "--days", "2", "--instances-per-day", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    today = datetime.now(UTC).date()
    days = sorted(os.listdir(os.path.join(warehouse.warehouse, "raw", "events")))
    assert days == [f"dt={today - timedelta(days=1)}", f"dt={today}"]
