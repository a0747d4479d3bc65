"""Feature job correctness on a tiny hand-made fixture: point in time, labels, reruns, ranges."""

from __future__ import annotations

import logging
import os
from datetime import date, timedelta

import pandas as pd
import pytest

from churn.core.settings import Settings
from churn.core.tables import FEATURE_TABLES, table_location
from churn.core.tables import table as core_table
from churn.core.warehouse import (
    current_snapshot_id,
    list_partitions,
    partition_snapshot,
    read_partition,
    read_partitions,
)
from churn.etl_jobs.build_features import build_features, event_days_needed

from .raw_fixture import days, ts, write_evaluations, write_events

START_A = date(2026, 3, 3)
W1_DT = START_A + timedelta(days=7)  # 2026-03-10
MODELING_DT = START_A + timedelta(days=30)  # 2026-04-02


def _events() -> list[dict]:
    d = lambda n: START_A + timedelta(days=n)  # noqa: E731
    return [
        {"instance_id": "A", "event_time": ts(d(-1), 23), "event_type": "issue_created"},  # before start
        {"instance_id": "A", "event_time": ts(d(0), 0), "event_type": "project_created"},  # exactly at start
        {"instance_id": "A", "event_time": ts(d(0), 10), "event_type": "issue_created"},
        {"instance_id": "A", "event_time": ts(d(0), 11), "event_type": "issue_created", "user_id": "u2", "platform": "mobile"},
        {"instance_id": "A", "event_time": ts(d(1), 9), "event_type": "user_invited"},
        {"instance_id": "A", "event_time": ts(d(2), 12), "event_type": "issue_viewed", "user_id": "u3", "platform": "mobile"},
        {"instance_id": "A", "event_time": ts(d(3), 10), "event_type": "page_loaded"},  # unknown type
        {"instance_id": "A", "event_time": ts(d(5), 8), "event_type": "sprint_started", "user_id": "u2"},
        {"instance_id": "A", "event_time": ts(d(7)) - timedelta(seconds=1), "event_type": "issue_completed",
         "received_at": ts(d(7)) - timedelta(seconds=1)},  # last second of the week
        {"instance_id": "A", "event_time": ts(d(7)), "event_type": "issue_completed"},  # exactly at cutoff
        {"instance_id": "A", "event_time": ts(d(6), 20), "event_type": "issue_commented", "received_at": ts(d(7), 1)},
        # u4's only first-week event arrived after the cutoff: u4 is not active, day 4 has no active user
        {"instance_id": "A", "event_time": ts(d(4), 15), "event_type": "issue_created", "user_id": "u4",
         "received_at": ts(d(8), 0)},
        {"instance_id": "A", "event_time": ts(d(9), 9), "event_type": "issue_created"},  # week 2
        # B's only event arrived after the cutoff: B has a row of zeros, not a division by its zero events
        {"instance_id": "B", "event_time": ts(d(2), 9), "event_type": "issue_created", "received_at": ts(d(9), 0)},
        {"instance_id": "C", "event_time": ts(d(1), 9), "event_type": "issue_created"},
        {"instance_id": "GHOST", "event_time": ts(d(2), 9), "event_type": "issue_created"},  # unknown instance
    ]


def _evaluations(converted_a=date(2026, 3, 20), converted_b=date(2026, 4, 2)) -> list[dict]:
    return [
        {"instance_id": "A", "eval_start_date": START_A, "converted_date": converted_a},
        {"instance_id": "B", "eval_start_date": START_A, "converted_date": converted_b},  # converts on day 30: too late
        {"instance_id": "C", "eval_start_date": START_A + timedelta(days=1), "converted_date": None},
    ]


@pytest.fixture()
def raw(warehouse):
    write_evaluations(warehouse, _evaluations())
    write_events(warehouse, _events(), days(START_A - timedelta(days=30), START_A + timedelta(days=12)))
    return warehouse


def _table(settings, name, dt):
    frame = read_partition(name, dt, settings)
    return frame.set_index("instance_id").sort_index()


@pytest.mark.parametrize("engine", ["spark", "duckdb"])
def test_hand_computed_features_respect_the_first_week_cutoff(raw, spark, caplog, engine):
    caplog.set_level(logging.INFO, logger="churn.features")
    raw = raw.model_copy(update={"feature_engine": engine})
    summary = build_features(W1_DT, W1_DT, raw, tables=["instances_w1"], spark=spark)  # DuckDB ignores the session
    w1 = _table(raw, "instances_w1", W1_DT)
    assert list(w1.index) == ["A", "B"]
    a = w1.loc["A"]
    expected = {
        "number_of_projects": 1, "number_of_issues": 2, "number_of_invites": 1, "issues_viewed": 1,
        "sprint_started": 1, "issues_completed": 1, "issues_commented": 0, "watchers_added": 0,
        "w1_active_users": 3, "w1_agg_active_users": 7, "w1_max_active_users": 2, "mobile_usage": 2,
        "w1_events": 8, "w1_active_days": 6,
    }
    assert {k: int(a[k]) for k in expected} == expected
    assert a["w1_activity_trend"] == pytest.approx((2 - 5) / 8)
    assert a["hours_to_first_key_action"] == pytest.approx(10.0)
    b = w1.loc["B"]
    assert int(b["w1_events"]) == 0 and int(b["number_of_issues"]) == 0 and int(b["w1_active_users"]) == 0
    assert b["w1_activity_trend"] == 0.0
    assert b["hours_to_first_key_action"] == pytest.approx(7 * 24.0)
    quality = summary["quality"]
    assert quality["cohort_before_eval_start"] == 0  # dt=03-02 is outside the partitions a 03-10 run reads
    assert quality["cohort_received_late"] == 3
    assert quality["unknown_event_type"] == 1
    assert quality["outside_first_weeks"] >= 1
    # the unknown type is named, with its count
    assert any("types outside" in r.getMessage() and "page_loaded=1" in r.getMessage() for r in caplog.records)


def test_instances_w1_has_no_label_and_modeling_labels_use_the_window(raw, spark):
    # modeling first: both computed from the events (built after instances_w1, it would take that table's features)
    build_features(MODELING_DT, MODELING_DT, raw, tables=["instances_modeling"], spark=spark)
    build_features(W1_DT, W1_DT, raw, tables=["instances_w1"], spark=spark)
    w1 = _table(raw, "instances_w1", W1_DT)
    modeling = _table(raw, "instances_modeling", MODELING_DT)
    assert "retained" not in w1.columns and "converted_date" not in w1.columns
    assert modeling["retained"].to_dict() == {"A": 1, "B": 0}
    features = [c for c in w1.columns if c not in ("eval_start_date", "dt")]
    pd.testing.assert_frame_equal(w1[features], modeling[features])


def test_changing_converted_date_never_changes_a_feature(raw, spark):
    build_features(MODELING_DT, MODELING_DT, raw, tables=["instances_modeling"], spark=spark)
    before = _table(raw, "instances_modeling", MODELING_DT)
    write_evaluations(raw, _evaluations(converted_a=None, converted_b=date(2026, 3, 4)))
    build_features(MODELING_DT, MODELING_DT, raw, tables=["instances_modeling"], spark=spark)
    after = _table(raw, "instances_modeling", MODELING_DT)
    assert after["retained"].to_dict() == {"A": 0, "B": 1}
    pd.testing.assert_frame_equal(before.drop(columns="retained"), after.drop(columns="retained"))


def _contents(settings, name: str) -> pd.DataFrame:
    """Every published row of a table, in a stable order (reruns are compared by rows, not bytes)."""
    return read_partitions(name, list_partitions(name, settings), settings)


def test_rerun_gives_identical_rows_and_replaces_the_day(raw, spark):
    build_features(W1_DT, W1_DT, raw, spark=spark)
    first = {name: _contents(raw, name) for name in FEATURE_TABLES}
    snapshot = current_snapshot_id("instances_w1", raw)
    build_features(W1_DT, W1_DT, raw, spark=spark)
    for name in FEATURE_TABLES:
        pd.testing.assert_frame_equal(_contents(raw, name), first[name])
    assert current_snapshot_id("instances_w1", raw) != snapshot  # a new snapshot replaced the day
    assert len(read_partition("instances_w1", W1_DT, raw, snapshot_id=snapshot)) == len(first["instances_w1"])


def test_range_build_equals_day_by_day(raw, spark, tmp_path):
    end = W1_DT + timedelta(days=1)
    build_features(W1_DT, end, raw, tables=["instances_w1"], spark=spark)
    ranged = _contents(raw, "instances_w1")
    assert len({p["snapshot_id"] for p in _snapshots(raw, [W1_DT, end])}) == 1  # one commit for the range
    day_by_day = Settings(warehouse=str(tmp_path / "again"), raw_evaluations=table_location("evaluations", raw),
                          raw_events=table_location("events", raw), _env_file=None)
    for day in (W1_DT, end):
        build_features(day, day, day_by_day, tables=["instances_w1"], spark=spark)
    pd.testing.assert_frame_equal(_contents(day_by_day, "instances_w1"), ranged)
    assert len({p["snapshot_id"] for p in _snapshots(day_by_day, [W1_DT, end])}) == 2
    assert list(_table(raw, "instances_w1", end).index) == ["C"]


def _snapshots(settings, days):
    return [partition_snapshot("instances_w1", d, settings) for d in days]


def test_daily_run_reads_only_its_first_week_partitions(raw, spark):
    table = core_table("instances_w1")
    needed = event_days_needed(table, W1_DT, W1_DT, raw)
    assert needed == [START_A + timedelta(days=i) for i in range(7)]
    modeling = event_days_needed(core_table("instances_modeling"), MODELING_DT, MODELING_DT, raw)
    assert modeling == needed
    # a corrupt partition outside the window must not even be opened
    corrupt = os.path.join(table_location("events", raw), f"dt={(START_A + timedelta(days=10)).isoformat()}", "part-00000.parquet")
    with open(corrupt, "wb") as handle:
        handle.write(b"not parquet")
    build_features(W1_DT, W1_DT, raw, tables=["instances_w1"], spark=spark)
    assert len(_table(raw, "instances_w1", W1_DT)) == 2


def test_sign_up_features_weekday_and_ranked_attribute(warehouse, spark, caplog):
    """eval_start_weekday from the cohort's start; company_size_rank from the evaluations column
    (value -> 1-based rank, unknown value or null -> NULL, counted and logged; missing column -> NULL)."""
    import pyarrow as pa

    from churn.core.contract import EVALUATIONS_SCHEMA

    schema = EVALUATIONS_SCHEMA.append(pa.field("company_size_band", pa.string()))
    rows = [r | {"company_size_band": band} for r, band in zip(_evaluations(), ["51-200", "huge", None], strict=True)]
    write_evaluations(warehouse, rows, schema=schema)
    write_events(warehouse, _events(), days(START_A - timedelta(days=30), START_A + timedelta(days=12)))
    with caplog.at_level("WARNING", logger="churn.features"):
        build_features(W1_DT, W1_DT + timedelta(days=1), warehouse, tables=["instances_w1"], spark=spark)
    w1 = pd.concat([_table(warehouse, "instances_w1", W1_DT + timedelta(days=n)) for n in (0, 1)])
    assert w1["eval_start_weekday"].to_dict() == {"A": START_A.isoweekday(), "B": START_A.isoweekday(),
                                                  "C": (START_A + timedelta(days=1)).isoweekday()}
    assert w1.loc["A", "company_size_rank"] == 3.0
    assert w1[["company_size_rank"]].loc[["B", "C"]].isna().all().all()
    assert "1 rows have a value outside the ranks of feature company_size_rank" in caplog.text

    write_evaluations(warehouse, _evaluations())  # the column is absent: NULL feature, and a warning
    caplog.clear()
    with caplog.at_level("WARNING", logger="churn.features"):
        build_features(W1_DT, W1_DT, warehouse, tables=["instances_w1"], spark=spark)
    assert _table(warehouse, "instances_w1", W1_DT)["company_size_rank"].isna().all()
    assert "evaluations.company_size_band is missing" in caplog.text
