"""The task callables without Airflow: which days a run is about, what XCom gets, the alert hook."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest

from churn import orchestration as orch

CALLS: list = []


def record_alert(context):
    CALLS.append(context)


def broken_alert(context):
    raise RuntimeError("pager is down")


def test_run_date_prefers_the_logical_date_and_falls_back_to_run_after():
    assert orch.run_date(datetime(2026, 3, 2, 0, 0, tzinfo=UTC)) == date(2026, 3, 2)
    assert orch.run_date(None, datetime(2026, 3, 5, 14, 0, tzinfo=UTC)) == date(2026, 3, 5)
    with pytest.raises(ValueError):
        orch.run_date(None, None)


def test_feature_range_is_the_day_or_the_params_range():
    day = date(2026, 3, 2)
    assert orch.feature_range({"start": None, "end": None}, day) == (day, day)
    assert orch.feature_range({"start": "2026-01-01", "end": "2026-01-31"}, day) == (
        date(2026, 1, 1),
        date(2026, 1, 31),
    )
    with pytest.raises(ValueError, match="both"):
        orch.feature_range({"start": "2026-01-01", "end": None}, day)
    with pytest.raises(ValueError):
        orch.feature_range({}, None)


def test_event_extra_names_the_published_days_and_what_to_rescore():
    extra = orch.features_event_extra(date(2026, 1, 30), date(2026, 2, 1))
    assert extra == {"start": "2026-01-30", "end": "2026-02-01", "dts": ["2026-01-30", "2026-01-31", "2026-02-01"]}
    assert orch.features_event_extra(date(2026, 1, 30), date(2026, 2, 1), rescore=False)["dts"] == []


def test_dates_to_score_merges_queued_events_params_and_fallback():
    events = [{"dts": ["2026-03-02"]}, {"dts": ["2026-03-01", "2026-03-02"]}, None, {"dt": "2026-02-27"}, {}]
    assert orch.dates_to_score(events) == [date(2026, 2, 27), date(2026, 3, 1), date(2026, 3, 2)]
    assert orch.dates_to_score([], ["2026-03-04"], fallback=date(2026, 3, 9)) == [date(2026, 3, 4)]
    assert orch.dates_to_score([{"dts": []}], fallback=date(2026, 3, 9)) == [date(2026, 3, 9)]
    assert orch.dates_to_score([{"dts": []}]) == []


def test_xcom_safe_keeps_scalars_and_drops_data():
    import numpy as np
    import pandas as pd

    value = {
        "auc": np.float64(0.81234567),
        "n": np.int64(3),
        "when": date(2026, 1, 2),
        "frame": pd.DataFrame({"a": [1]}),
        "nested": {"ok": [1, "x", None]},
    }
    assert orch._xcom_safe(value) == {"auc": 0.812346, "n": 3, "when": "2026-01-02", "nested": {"ok": [1, "x", None]}}


def test_alert_calls_the_configured_callback(monkeypatch, caplog):
    from churn.settings import reset_settings_cache

    CALLS.clear()
    monkeypatch.setenv("CHURN_ALERT_CALLBACK", f"{__name__}:record_alert")
    reset_settings_cache()
    context = {"exception": ValueError("boom"), "ti": None}
    with caplog.at_level(logging.ERROR, logger="churn.orchestration"):
        orch.alert_on_failure(context)
    assert CALLS == [context]
    assert "boom" in caplog.text
    reset_settings_cache()


def test_a_broken_alert_callback_never_raises(monkeypatch, caplog):
    from churn.settings import reset_settings_cache

    monkeypatch.setenv("CHURN_ALERT_CALLBACK", f"{__name__}:broken_alert")
    reset_settings_cache()
    with caplog.at_level(logging.ERROR, logger="churn.orchestration"):
        orch.alert_on_failure({"exception": ValueError("boom")})
    assert "pager is down" in caplog.text
    reset_settings_cache()


def test_schedules_never_run_a_time_that_already_passed():
    from datetime import timedelta

    timetable = orch.cron_utc("0 0 * * *")
    assert timetable.expression == "0 0 * * *" and timetable.run_immediately == timedelta(0)


def test_monitoring_alerts_reach_the_same_callback_and_no_alert_calls_nothing(monkeypatch, caplog):
    from churn.settings import reset_settings_cache

    CALLS.clear()
    monkeypatch.setenv("CHURN_ALERT_CALLBACK", f"{__name__}:record_alert")
    reset_settings_cache()
    orch.raise_monitoring_alerts([])
    assert CALLS == []
    with caplog.at_level(logging.ERROR, logger="churn.orchestration"):
        orch.raise_monitoring_alerts(["2026-03-02: drift number_of_issues: PSI 0.412 > 0.25"])
    assert CALLS == [{"monitoring_alerts": ["2026-03-02: drift number_of_issues: PSI 0.412 > 0.25"]}]
    assert "PSI 0.412" in caplog.text
    monkeypatch.setenv("CHURN_ALERT_CALLBACK", f"{__name__}:broken_alert")
    reset_settings_cache()
    orch.raise_monitoring_alerts(["x"])  # a broken pager never fails the monitoring run
    assert "pager is down" in caplog.text
    reset_settings_cache()


class _Event:
    def __init__(self, extra):
        self.extra = extra


def test_triggered_days_come_from_events_then_params_then_the_logical_date():
    events = {"asset": [_Event({"dts": ["2026-03-02"]}), _Event({"dts": ["2026-03-01", "2026-03-02"]})]}
    assert orch.triggered_days({}, events, None)[0] == [date(2026, 3, 1), date(2026, 3, 2)]
    assert orch.triggered_days({"dts": ["2026-03-05"]}, {}, None)[0] == [date(2026, 3, 5)]
    assert orch.triggered_days({}, {}, datetime(2026, 3, 7, tzinfo=UTC))[0] == [date(2026, 3, 7)]
    assert orch.triggered_days(None, None, None) == ([], [])
