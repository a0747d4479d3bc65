"""Every bad-input case gets a clear error naming table, column and rows, or a counted handling;
a failed run never touches what is already published."""

from __future__ import annotations

import os
from datetime import date, timedelta

import pyarrow as pa
import pytest

from churn.core.contract import DataContractError
from churn.core.feature_config import FeatureConfigError, load_feature_config
from churn.core.settings import Settings
from churn.core.tables import table, table_location
from churn.core.warehouse import list_partitions, read_partition
from churn.etl_jobs.build_features import build_features

from .raw_fixture import days, ts, write_evaluations, write_events

START = date(2026, 5, 4)
DT = START + timedelta(days=7)
ALL_DAYS = days(START - timedelta(days=31), START + timedelta(days=10))


def _good_events():
    return [
        {"instance_id": "A", "event_time": ts(START, 9), "event_type": "issue_created"},
        {"instance_id": "B", "event_time": ts(START + timedelta(days=2), 9), "event_type": "issue_viewed"},
    ]


def _good_evaluations():
    return [
        {"instance_id": "A", "eval_start_date": START, "converted_date": None},
        {"instance_id": "B", "eval_start_date": START, "converted_date": START + timedelta(days=3)},
    ]


@pytest.fixture()
def raw(warehouse):
    write_evaluations(warehouse, _good_evaluations())
    write_events(warehouse, _good_events(), ALL_DAYS)
    return warehouse


def _build(settings, spark, tables=("instances_w1",)):
    return build_features(DT, DT, settings, tables=list(tables), spark=spark)


def test_event_column_of_wrong_type_names_table_and_column(raw, spark):
    folder = os.path.join(table_location("events", raw), f"dt={START.isoformat()}")
    import pyarrow.parquet as pq

    bad = pa.table({"instance_id": ["A"], "user_id": ["u"], "event_time": ["2026-05-04 09:00"],
                    "event_type": ["issue_created"], "platform": ["web"]})
    for name in os.listdir(folder):
        os.remove(os.path.join(folder, name))
    pq.write_table(bad, os.path.join(folder, "part-00000.parquet"))
    with pytest.raises(DataContractError, match=r"events\.event_time: expected type timestamp, found string"):
        _build(raw, spark)


def test_only_the_evaluations_of_the_runs_cohorts_are_read_and_checked(raw, spark):
    """A daily run filters evaluations by eval_start_date at the Parquet reader (cost bounded by the range)."""
    far = START - timedelta(days=400)
    rows = [*_good_evaluations(), {"instance_id": "OLD", "eval_start_date": far, "converted_date": None},
            {"instance_id": "OLD", "eval_start_date": far, "converted_date": None}]  # a duplicate, long ago
    write_evaluations(raw, rows)
    assert _build(raw, spark)["tables"]["instances_w1"]["partitions"][0]["rows"] == 2

    plan = spark.sql("SELECT * FROM evaluations").select("instance_id")._jdf.queryExecution().executedPlan().toString()
    assert "PushedFilters" in plan and "eval_start_date" in plan.split("PushedFilters")[1][:300], plan
    rows[-1] = {"instance_id": "OLD", "eval_start_date": START, "converted_date": None}
    rows[-2] = {"instance_id": "OLD", "eval_start_date": START, "converted_date": None}
    write_evaluations(raw, rows)
    with pytest.raises(DataContractError, match="OLD x2"):  # inside the range the check still holds
        _build(raw, spark)


def test_a_daily_run_checks_the_sign_ups_of_its_two_cohorts_not_the_month_between(raw, spark):
    """Both tables of a daily run: sign-ups of dt - 7 and dt - 37 days. A duplicate between them is not this run's
    (the run of its own cohort reports it); before, the whole month between was read and checked."""
    between = START - timedelta(days=15)
    rows = [*_good_evaluations(), *[{"instance_id": "MID", "eval_start_date": between, "converted_date": None}] * 2]
    write_evaluations(raw, rows)
    summary = _build(raw, spark, tables=("instances_w1", "instances_modeling"))
    assert summary["tables"]["instances_w1"]["partitions"][0]["rows"] == 2
    with pytest.raises(DataContractError, match="MID x2"):  # the run whose w1 cohort it is
        build_features(between + timedelta(days=7), between + timedelta(days=7), raw, tables=["instances_w1"],
                       spark=spark)


def test_missing_evaluation_column_is_named(raw, spark):
    schema = pa.schema([("instance_id", pa.string()), ("eval_start_date", pa.date32())])
    write_evaluations(raw, [{"instance_id": "A", "eval_start_date": START}], schema=schema)
    with pytest.raises(DataContractError, match=r"evaluations\.converted_date: required column is missing"):
        _build(raw, spark)


def test_null_instance_id_in_evaluations_shows_rows(raw, spark):
    write_evaluations(raw, [*_good_evaluations(), {"instance_id": None, "eval_start_date": START, "converted_date": None}])
    with pytest.raises(DataContractError, match=r"evaluations\.instance_id: 1 rows with null instance_id — e\.g\. .*2026") as info:
        _build(raw, spark)
    assert [r["instance_id"] for r in info.value.examples] == [None]


def test_duplicate_instance_ids_are_listed(raw, spark):
    rows = [*_good_evaluations(), {"instance_id": "B", "eval_start_date": START, "converted_date": None}]
    write_evaluations(raw, rows)
    with pytest.raises(DataContractError, match=r"evaluations\.instance_id: 1 duplicate rows .* e\.g\. B x2"):
        _build(raw, spark)


def test_null_event_keys_show_example_rows(raw, spark):
    events = [*_good_events(), {"instance_id": "A", "event_time": ts(START, 10), "event_type": None}]
    write_events(raw, events, ALL_DAYS)
    with pytest.raises(DataContractError, match=r"events\.instance_id/user_id/event_time/event_type: 1 rows with null") as info:
        _build(raw, spark)
    # the rows shown are the offending ones (the predicate that picks them matches the count)
    assert [(r["instance_id"], r["event_type"], r["event_time"].hour) for r in info.value.examples] == [("A", None, 10)]
    assert "'event_type': None" in str(info.value)


def test_event_in_the_wrong_or_a_future_partition_is_rejected(raw, spark):
    future = {"instance_id": "A", "event_time": ts(START + timedelta(days=20), 10), "event_type": "issue_created",
              "dt": START.isoformat()}
    write_events(raw, [*_good_events(), future], ALL_DAYS)
    with pytest.raises(DataContractError, match=r"events\.event_time: 1 rows with event_time outside its dt partition") as info:
        _build(raw, spark)
    assert [(r["dt"], r["event_time"].date()) for r in info.value.examples] == [
        (START.isoformat(), START + timedelta(days=20))]


def test_with_both_tables_wrong_the_error_of_evaluations_is_reported(raw, spark):
    """Spark checks evaluations while it reads the events: the error is still the one a step-by-step run gives."""
    future = {"instance_id": "A", "event_time": ts(START + timedelta(days=20), 10), "event_type": "issue_created",
              "dt": START.isoformat()}
    write_events(raw, [*_good_events(), future], ALL_DAYS)
    write_evaluations(raw, [*_good_evaluations(), {"instance_id": "B", "eval_start_date": START, "converted_date": None}])
    with pytest.raises(DataContractError, match=r"evaluations\.instance_id: 1 duplicate rows"):
        _build(raw, spark)


def test_unlanded_partition_is_an_error_naming_the_days(raw, spark):
    missing = os.path.join(table_location("events", raw), f"dt={(START + timedelta(days=3)).isoformat()}")
    for name in os.listdir(missing):
        os.remove(os.path.join(missing, name))
    os.rmdir(missing)
    with pytest.raises(DataContractError, match=r"events\.dt: 1 needed partitions have not landed .* 2026-05-07"):
        _build(raw, spark)


def test_unknown_instances_and_event_types_are_counted_not_fatal(raw, spark):
    events = [
        *_good_events(),
        {"instance_id": "NOPE", "event_time": ts(START, 11), "event_type": "issue_created"},
        {"instance_id": "A", "event_time": ts(START, 12), "event_type": "billing_page_opened"},
    ]
    write_events(raw, events, ALL_DAYS)
    quality = _build(raw, spark)["quality"]
    assert quality["outside_first_weeks"] >= 1 and quality["unknown_event_type"] == 1
    frame = read_partition(table("instances_w1"), DT, raw).set_index("instance_id")
    assert int(frame.loc["A", "w1_events"]) == 2 and int(frame.loc["A", "number_of_issues"]) == 1


def test_a_day_without_instances_publishes_an_empty_partition(raw, spark):
    empty_day = DT + timedelta(days=1)
    build_features(empty_day, empty_day, raw, tables=["instances_w1"], spark=spark)
    frame = read_partition(table("instances_w1"), empty_day, raw)
    assert len(frame) == 0
    expected = [c for c, _ in load_feature_config(raw).table_columns("instances_w1")]
    assert list(frame.columns) == [*expected, "dt"]


def test_failed_run_keeps_the_published_partition(raw, spark):
    _build(raw, spark, tables=("instances_w1", "instances_modeling"))
    w1 = table("instances_w1")
    before = read_partition(w1, DT, raw)
    write_events(raw, [*_good_events(), {"instance_id": None, "event_time": ts(START, 1), "event_type": "x"}], ALL_DAYS)
    with pytest.raises(DataContractError):
        _build(raw, spark, tables=("instances_w1", "instances_modeling"))
    assert read_partition(w1, DT, raw).equals(before)
    assert list_partitions(w1, raw) == [DT]
    staging = os.path.join(raw.warehouse, "_staging", "instances_w1")
    assert not os.path.exists(staging) or not os.listdir(staging)


def test_other_products_are_onboarded_by_configuration(raw, spark, tmp_path, monkeypatch):
    config = tmp_path / "features.yaml"
    config.write_text(
        "count_features:\n  pages_published: [page_published]\n  issues_touched: [issue_created, issue_viewed]\n"
        "mobile_platforms: [mobile]\nkey_event_types: [page_published]\n"
    )
    monkeypatch.setenv("CHURN_FEATURE_CONFIG", str(config))
    settings = Settings()
    build_features(DT, DT, settings, tables=["instances_w1"], spark=spark)
    frame = read_partition(table("instances_w1"), DT, settings).set_index("instance_id")
    assert "number_of_issues" not in frame.columns
    assert frame["pages_published"].tolist() == [0, 0]  # type absent from the data: 0, not a missing column
    assert frame["issues_touched"].to_dict() == {"A": 1, "B": 1}


def test_bad_feature_configuration_is_explained(tmp_path):
    config = tmp_path / "features.yaml"
    config.write_text("count_features:\n  w1_events: [issue_created]\n")
    with pytest.raises(FeatureConfigError, match="reserved"):
        load_feature_config(path=config)
