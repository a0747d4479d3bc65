"""`churn features | train | score | monitor` as a user runs them: ranges, one-line errors, skips and alerts.

They run the same job functions as the DAG tasks (churn.jobs); these tests use the small simulated
history with a champion of tests/dags/conftest.py.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from churn.cli import app
from churn.core.tables import FEATURE_DRIFT, INSTANCES_MODELING, INSTANCES_W1, MODEL_PERFORMANCE, PREDICTIONS
from churn.core.warehouse import list_partitions

from .conftest import FIRST_RETRAIN, HISTORY

ALERTS: list = []
DAYS = [FIRST_RETRAIN + timedelta(days=n) for n in range(2)]


def record_alert(payload):
    ALERTS.append(payload)


def _churn(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_features_builds_a_range_and_rejects_bad_days(warehouse_with_champion, spark):
    settings = warehouse_with_champion
    code, out, err = _churn("features", "--start", DAYS[0].isoformat(), "--end", DAYS[1].isoformat(), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["days"] == [d.isoformat() for d in DAYS] and summary["engine"] == "spark"
    assert summary["tables"]["instances_w1"]["partitions"] == 2 and summary["tables"]["instances_w1"]["rows"] > 40
    for table in (INSTANCES_W1, INSTANCES_MODELING):
        assert set(DAYS) <= set(list_partitions(table, settings))
    code, _, err = _churn("features", "--ds", "2026-13-01")
    assert code == 2 and "not a date" in err
    code, _, err = _churn("features", "--ds", DAYS[0].isoformat(), "--end", DAYS[1].isoformat())
    assert code == 2 and "either --ds or --start/--end" in err
    code, _, err = _churn("features", "--start", DAYS[1].isoformat(), "--end", DAYS[0].isoformat())
    assert code == 2 and "before" in err


def test_features_names_unlanded_raw_data_in_one_line(warehouse_with_champion, spark):
    far = HISTORY[1] + timedelta(days=60)  # the simulated world has no events then
    code, _, err = _churn("features", "--ds", far.isoformat())
    assert code == 1
    assert _one_line_error(err).startswith("error: events.dt: ") and "have not landed" in err


def test_train_registers_a_version_and_explains_missing_data(warehouse_with_champion, tmp_path, monkeypatch):
    code, out, err = _churn("train", "--run-date", FIRST_RETRAIN.isoformat(), "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["reused"] is True and result["version"].startswith(FIRST_RETRAIN.isoformat())  # same data: same version
    (tmp_path / "empty").mkdir()  # exists, holds nothing
    monkeypatch.setenv("CHURN_WAREHOUSE", str(tmp_path / "empty"))
    code, _, err = _churn("train", "--run-date", FIRST_RETRAIN.isoformat())
    assert code == 1 and _one_line_error(err).startswith("error: no training data for run date")


def test_score_a_range_and_fail_clearly_without_a_champion(warehouse_with_champion, tmp_path, monkeypatch):
    settings = warehouse_with_champion
    last = HISTORY[1]
    code, out, err = _churn("score", "--start", (last - timedelta(days=1)).isoformat(), "--end", last.isoformat(), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["days"] == [(last - timedelta(days=1)).isoformat(), last.isoformat()]
    assert list_partitions(PREDICTIONS, settings) == [last - timedelta(days=1), last]
    (tmp_path / "empty").mkdir()  # exists, holds nothing
    monkeypatch.setenv("CHURN_WAREHOUSE", str(tmp_path / "empty"))
    code, _, err = _churn("score", "--ds", last.isoformat())
    assert code == 1 and _one_line_error(err).startswith("error: no champion model")


def test_monitor_a_range_raises_alerts_and_skips_days_without_data(warehouse_with_champion, monkeypatch):
    settings = warehouse_with_champion
    last = HISTORY[1]
    assert _churn("score", "--ds", last.isoformat())[0] == 0
    ALERTS.clear()
    monkeypatch.setenv("CHURN_MONITORING_PSI_ALERT", "0.0001")  # every drift row alerts ...
    monkeypatch.setenv("CHURN_MONITORING_DRIFT_P_VALUE", "1")  # ... whatever its sample size
    monkeypatch.setenv("CHURN_ALERT_CALLBACK", f"{__name__}:record_alert")
    code, out, err = _churn("monitor", "--start", (last - timedelta(days=1)).isoformat(), "--end", last.isoformat(),
                            "--json")
    assert code == 0, err
    summary = json.loads(out)
    # outcomes arrived both days (performance); only the last day was scored (drift)
    assert [p["dt"] for p in summary["performance"]] == [(last - timedelta(days=1)).isoformat(), last.isoformat()]
    assert [d["dt"] for d in summary["drift"]] == [last.isoformat()]
    assert any("no predictions" in s for s in summary["skipped"])
    assert summary["alerts"] and all(a.startswith(f"{last}: drift ") for a in summary["alerts"])
    assert ALERTS == [{"monitoring_alerts": summary["alerts"]}]  # the same callback the DAG uses
    assert list_partitions(FEATURE_DRIFT, settings) == [last]
    assert len(list_partitions(MODEL_PERFORMANCE, settings)) == 2

    far = last + timedelta(days=300)
    code, out, err = _churn("monitor", "--ds", far.isoformat())
    assert code == 0 and out == "" and "skipped: performance of" in err and "no outcomes" in err


@pytest.mark.parametrize("command", ["features", "score", "monitor"])
def test_day_options_are_required(command, empty_warehouse):
    code, _, err = _churn(command)
    assert code == 2 and "give --ds D, or --start A and --end B" in err
