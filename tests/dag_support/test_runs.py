"""The job layer's Airflow helpers without Airflow runs: which days a run is about, asset events, alerts."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pytest

from churn.core.dates import DateRangeError
from churn.core.settings import Settings
from churn.core.tables import INSTANCES_MODELING, INSTANCES_W1, PREDICTIONS
from churn.dag_support import runs, tasks
from churn.jobs import alerts
from churn.jobs.summaries import json_safe

CALLS: list = []


def record_alert(context):
    CALLS.append(context)


def broken_alert(context):
    raise RuntimeError("pager is down")


def test_run_date_prefers_the_logical_date_and_falls_back_to_run_after():
    assert runs.run_date(datetime(2026, 3, 2, 0, 0, tzinfo=UTC)) == date(2026, 3, 2)
    assert runs.run_date(None, datetime(2026, 3, 5, 14, 0, tzinfo=UTC)) == date(2026, 3, 5)
    with pytest.raises(DateRangeError):
        runs.run_date(None, None)


def test_feature_range_is_the_day_or_the_params_range():
    day = datetime(2026, 3, 2, tzinfo=UTC)
    assert runs.feature_range({"start": None, "end": None}, day) == (date(2026, 3, 2), date(2026, 3, 2))
    assert runs.feature_range({"start": "2026-01-01", "end": "2026-01-31"}, day) == (date(2026, 1, 1), date(2026, 1, 31))
    with pytest.raises(DateRangeError, match="both"):
        runs.feature_range({"start": "2026-01-01", "end": None}, day)
    with pytest.raises(DateRangeError, match="before"):
        runs.feature_range({"start": "2026-01-31", "end": "2026-01-01"}, day)
    with pytest.raises(DateRangeError):
        runs.feature_range({}, None)


def test_event_extras_name_the_published_days_and_what_to_rescore():
    extras = runs.features_event_extras(date(2026, 1, 30), date(2026, 2, 1), rescore=True)
    days = ["2026-01-30", "2026-01-31", "2026-02-01"]
    assert extras[INSTANCES_W1.asset_uri]["dts"] == days and extras[INSTANCES_MODELING.asset_uri]["dts"] == days
    quiet = runs.features_event_extras(date(2026, 1, 30), date(2026, 2, 1), rescore=False)
    assert quiet[INSTANCES_W1.asset_uri]["dts"] == []  # a range rebuild keeps past predictions ...
    assert quiet[INSTANCES_MODELING.asset_uri]["dts"] == days  # ... but its outcomes are new: monitoring runs


class _Event:
    def __init__(self, extra):
        self.extra = extra


class _Asset:
    def __init__(self, uri):
        self.uri = uri


def test_triggered_days_are_told_apart_by_the_asset_that_named_them():
    events = {
        _Asset(INSTANCES_MODELING.asset_uri): [_Event({"dts": ["2026-03-02"]}), _Event({"dts": ["2026-03-01", "2026-03-02"]})],
        _Asset(PREDICTIONS.asset_uri): [_Event({"dts": ["2026-02-27"]}), _Event(None), _Event({})],
    }
    by_uri = runs.triggered_days({}, events)
    assert runs.days_for(by_uri, INSTANCES_MODELING.asset_uri) == [date(2026, 3, 1), date(2026, 3, 2)]
    assert runs.days_for(by_uri, PREDICTIONS.asset_uri) == [date(2026, 2, 27)]
    manual = runs.triggered_days({"dts": ["2026-03-05"]}, {}, datetime(2026, 3, 9, tzinfo=UTC))
    assert runs.days_for(manual, PREDICTIONS.asset_uri) == runs.days_for(manual, INSTANCES_MODELING.asset_uri) == [
        date(2026, 3, 5)]
    by_date = runs.triggered_days({}, {}, datetime(2026, 3, 7, tzinfo=UTC))
    assert runs.days_for(by_date, INSTANCES_W1.asset_uri) == [date(2026, 3, 7)]
    assert runs.days_for(runs.triggered_days(None, None, None), INSTANCES_W1.asset_uri) == []
    # a manual run triggered with a partition key (and no events) processes the days the key names
    keyed = runs.triggered_days({}, {}, None, "2026-03-01/2026-03-03")
    assert runs.days_for(keyed, PREDICTIONS.asset_uri) == [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)]
    # events name the days of an asset-triggered run; its key only names the run
    assert runs.days_for(runs.triggered_days({}, events, None, "2026-03-02"), PREDICTIONS.asset_uri) == [
        date(2026, 2, 27)]


def test_partition_keys_name_a_day_or_a_range_and_read_back():
    assert runs.partition_key(date(2026, 3, 10), date(2026, 3, 10)) == "2026-03-10"
    assert runs.partition_key(date(2026, 1, 1), date(2026, 1, 30)) == "2026-01-01/2026-01-30"
    assert runs.partition_days("2026-01-30/2026-02-01") == [date(2026, 1, 30), date(2026, 1, 31), date(2026, 2, 1)]
    assert runs.partition_days("2026-03-10") == [date(2026, 3, 10)] and runs.partition_days(None) == []
    with pytest.raises(DateRangeError, match="partition key 'march' names no days"):
        runs.partition_days("march")
    with pytest.raises(DateRangeError, match="partition key"):
        runs.partition_days("2026-02-01/2026-01-01")


def test_json_safe_keeps_scalars_and_drops_data():
    import numpy as np
    import pandas as pd

    value = {"auc": np.float64(0.81234567), "n": np.int64(3), "when": date(2026, 1, 2), "nan": float("nan"),
             "frame": pd.DataFrame({"a": [1]}), "nested": {"ok": [1, "x", None]}}
    assert json_safe(value) == {"auc": 0.812346, "n": 3, "when": "2026-01-02", "nan": None, "frame": None,
                                "nested": {"ok": [1, "x", None]}}


def test_failure_alert_calls_the_configured_callback(monkeypatch, caplog):
    CALLS.clear()
    monkeypatch.setenv("CHURN_ALERT_CALLBACK", f"{__name__}:record_alert")
    context = {"exception": ValueError("boom"), "ti": None}
    with caplog.at_level(logging.ERROR, logger="churn.alerts"):
        tasks.alert_on_failure(context)
    assert CALLS == [context]
    assert "boom" in caplog.text


def test_a_broken_alert_callback_never_raises(monkeypatch, caplog):
    monkeypatch.setenv("CHURN_ALERT_CALLBACK", f"{__name__}:broken_alert")
    with caplog.at_level(logging.ERROR, logger="churn.alerts"):
        tasks.alert_on_failure({"exception": ValueError("boom")})
    assert "pager is down" in caplog.text


def test_monitoring_alerts_reach_the_same_callback_and_no_alert_calls_nothing(caplog):
    CALLS.clear()
    settings = Settings(alert_callback=f"{__name__}:record_alert", _env_file=None)
    alerts.notify(settings, [])
    assert CALLS == []
    with caplog.at_level(logging.ERROR, logger="churn.alerts"):
        alerts.notify(settings, ["2026-03-02: drift number_of_issues: PSI 0.412 > 0.25"])
    assert CALLS == [{"monitoring_alerts": ["2026-03-02: drift number_of_issues: PSI 0.412 > 0.25"]}]
    assert "PSI 0.412" in caplog.text
    alerts.notify(Settings(alert_callback=f"{__name__}:broken_alert", _env_file=None), ["x"])  # never raises
    assert "pager is down" in caplog.text


def test_schedules_never_run_a_time_that_already_passed():
    """A newly deployed DAG's first scheduled run is the next midnight, not today's (already past) one."""
    from airflow.timetables.base import TimeRestriction
    from airflow.timetables.trigger import CronTriggerTimetable

    ours = runs.cron_utc("0 0 * * *")
    now = datetime.now(UTC)
    restriction = TimeRestriction(earliest=None, latest=None, catchup=False)  # no start_date, catchup=False

    def first_run(run_immediately):
        timetable = CronTriggerTimetable(ours.expression, timezone=ours.timezone, run_immediately=run_immediately)
        return timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction).logical_date

    assert first_run(ours.run_immediately) > now
    assert first_run(ours.run_immediately) - now <= timedelta(days=1)
    assert first_run(True) <= now  # what the rule prevents: the passed midnight would run at once


def test_check_alerts_fails_with_every_alert_in_its_message_and_passes_without():
    from airflow.sdk.exceptions import AirflowFailException

    from churn.dag_support import tasks

    tasks.fail_on_alerts({"days": ["2026-03-01"], "alerts": []})
    with pytest.raises(AirflowFailException) as failed:
        tasks.fail_on_alerts({"alerts": ["2026-03-01: psi 0.31 sessions", "2026-03-02: roc_auc 0.52"]})
    message = str(failed.value)
    assert message.startswith("2 monitoring alert(s)") and "psi 0.31 sessions" in message and "roc_auc 0.52" in message


def test_check_alerts_logs_each_alert_before_it_fails(caplog):
    from airflow.sdk.exceptions import AirflowFailException

    with caplog.at_level(logging.INFO), pytest.raises(AirflowFailException):
        tasks.fail_on_alerts({"alerts": ["2026-03-01: psi 0.31 sessions", "2026-03-02: roc_auc 0.52"]})
    assert [r.getMessage() for r in caplog.records] == ["ALERT: 2026-03-01: psi 0.31 sessions",
                                                        "ALERT: 2026-03-02: roc_auc 0.52"]


def test_the_retrain_log_line_names_the_model_report():
    from churn.jobs.summaries import RetrainSummary

    summary = RetrainSummary(run_date=date(2026, 3, 2), version="v1", promoted=True, reason="first",
                             champion_version="v1", model="xgboost", metrics={}, rows={"total": 10},
                             report="/w/models/churn_w1/v1/report.html", reused=False)
    assert summary.headline().endswith("report /w/models/churn_w1/v1/report.html")
    assert summary.as_dict()["report"] == "/w/models/churn_w1/v1/report.html"  # the task's XCom


class RecordingNotifier(__import__("airflow.sdk", fromlist=["BaseNotifier"]).BaseNotifier):
    """A real Airflow Notifier, as a provider's (Slack, SMTP, SNS) would be configured."""

    def __init__(self, channel: str):
        super().__init__()
        self.channel = channel

    def notify(self, context) -> None:
        CALLS.append({"channel": self.channel, **{k: context[k] for k in ("monitoring_alerts",) if k in context}})


class BrokenNotifier(RecordingNotifier):
    def notify(self, context) -> None:
        raise ConnectionError("slack is down")


def test_failures_and_alerts_go_to_the_configured_notifiers_and_the_callback(monkeypatch, caplog):
    import json

    from airflow.sdk.exceptions import AirflowFailException

    CALLS.clear()
    monkeypatch.setenv("CHURN_ALERT_CALLBACK", f"{__name__}:record_alert")
    monkeypatch.setenv("CHURN_ALERT_NOTIFIERS", json.dumps([
        {"class": f"{__name__}.BrokenNotifier", "kwargs": {"channel": "#broken"}},
        {"class": f"{__name__}.RecordingNotifier", "kwargs": {"channel": "#churn"}}]))
    with caplog.at_level(logging.ERROR, logger="churn.alerts"):
        tasks.alert_on_failure({"exception": ValueError("boom")})
    assert {"channel": "#churn"} in CALLS and {"exception": CALLS[-1].get("exception")} != {}
    assert "slack is down" in caplog.text  # logged; the others were still called
    CALLS.clear()
    with pytest.raises(AirflowFailException):
        tasks.fail_on_alerts({"alerts": ["2026-03-02: drift x"]})
    assert CALLS == [{"channel": "#churn", "monitoring_alerts": ["2026-03-02: drift x"]}]  # no second callback call


@pytest.mark.parametrize("value, says", [("not json", "is not JSON"), ('[{"class": "NoDots"}]', "must be a list"),
                                         ('{"class": "a.B"}', "must be a list")])
def test_a_malformed_notifier_setting_is_refused_in_one_line(value, says):
    with pytest.raises(ValueError, match=says):
        Settings(_env_file=None, alert_notifiers=value)


def test_a_notifier_that_cannot_be_imported_names_its_provider():
    from churn.dag_support.notifiers import build

    with pytest.raises(ValueError, match="cannot import airflow.providers.nope.N .*provider installed"):
        build([{"class": "airflow.providers.nope.N"}])
    with pytest.raises(ValueError, match="is not an Airflow Notifier"):
        build([{"class": "json.JSONDecoder"}])
