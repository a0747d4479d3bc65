"""instances_modeling takes the week-1 features of a cohort from instances_w1 only when they are what it would compute:
the day was published from the same event files, configuration and code, and holds every trial of the cohort."""

from __future__ import annotations

import os
from datetime import date, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churn.core.contract import DataContractError
from churn.core.settings import Settings
from churn.core.tables import table_location
from churn.core.warehouse import day_inputs, read_partition
from churn.etl_jobs.build_features import build_features, week1_inputs

from .raw_fixture import ts, write_evaluations
from .test_week1_features import MODELING_DT, START_A, W1_DT, _evaluations, raw  # noqa: F401 - the fixture


@pytest.fixture(params=["spark", "duckdb"])
def engine(request, raw):  # noqa: F811
    return Settings(warehouse=raw.warehouse, feature_engine=request.param, _env_file=None)


def _build(settings, spark, day, tables, resume=True):
    return build_features(day, day, settings, tables=tables, resume=resume,
                          spark=spark if settings.feature_engine == "spark" else None)


def _modeling(settings) -> pd.DataFrame:
    return read_partition("instances_modeling", MODELING_DT, settings).set_index("instance_id").sort_index()


def test_modeling_takes_the_scored_features_and_publishes_what_it_would_compute(engine, spark):
    computed = _build(engine, spark, MODELING_DT, ["instances_modeling"])  # nothing to take yet
    assert computed["chunks"][0]["week1_from_instances_w1"] == [] and computed["event_partitions"] == 7
    from_events = _modeling(engine)

    _build(engine, spark, W1_DT, ["instances_w1"])
    from churn.core.feature_config import load_feature_config

    assert day_inputs("instances_w1", engine)[W1_DT] == week1_inputs(START_A, engine, load_feature_config(engine))
    taken = _build(engine, spark, MODELING_DT, ["instances_modeling"])
    assert taken["chunks"][0]["week1_from_instances_w1"] == [START_A.isoformat()]
    assert taken["event_partitions"] == 0  # its cohort's first week is not read again
    pd.testing.assert_frame_equal(_modeling(engine).drop(columns="dt"), from_events.drop(columns="dt"))

    # --no-resume rebuilds from the raw files, taking nothing
    assert _build(engine, spark, MODELING_DT, ["instances_modeling"], resume=False)["event_partitions"] == 7


def test_an_event_file_changed_since_scoring_makes_modeling_compute_from_the_events(raw, spark):  # noqa: F811
    _build(raw, spark, W1_DT, ["instances_w1"])
    scored = read_partition("instances_w1", W1_DT, raw).set_index("instance_id")
    late = os.path.join(table_location("events", raw), f"dt={START_A + timedelta(days=2)}", "part-late.parquet")
    pq.write_table(pa.table({  # a file a producer added later, for a day of the cohort's first week
        "instance_id": ["A"], "user_id": ["u1"], "event_time": pa.array([ts(START_A + timedelta(days=2), 15)],
                                                                         pa.timestamp("us", tz="UTC")),
        "event_type": ["issue_created"], "platform": ["web"],
        "received_at": pa.array([ts(START_A + timedelta(days=2), 16)], pa.timestamp("us", tz="UTC"))}), late)
    result = _build(raw, spark, MODELING_DT, ["instances_modeling"])
    assert result["chunks"][0]["week1_from_instances_w1"] == []
    modeling = _modeling(raw)
    assert modeling.loc["A", "w1_events"] == scored.loc["A", "w1_events"] + 1
    assert modeling.loc["A", "number_of_issues"] == scored.loc["A", "number_of_issues"] + 1


def test_a_trial_that_reached_evaluations_after_scoring_makes_modeling_compute(raw, spark):  # noqa: F811
    _build(raw, spark, W1_DT, ["instances_w1"])
    write_evaluations(raw, [*_evaluations(), {"instance_id": "D", "eval_start_date": START_A, "converted_date": None}])
    result = _build(raw, spark, MODELING_DT, ["instances_modeling"])
    assert result["chunks"][0]["week1_from_instances_w1"] == []
    assert sorted(_modeling(raw).index) == ["A", "B", "D"]


def test_a_changed_feature_configuration_makes_modeling_compute(raw, spark, tmp_path):  # noqa: F811
    _build(raw, spark, W1_DT, ["instances_w1"])
    config = tmp_path / "features.yaml"
    config.write_text("count_features:\n  number_of_issues: [issue_created, issue_viewed]\n"
                      "mobile_platforms: [mobile]\nkey_event_types: [issue_created]\n")
    changed = raw.model_copy(update={"feature_config": str(config)})
    result = _build(changed, spark, MODELING_DT, ["instances_modeling"])
    assert result["chunks"][0]["week1_from_instances_w1"] == []
    assert _modeling(changed).loc["A", "number_of_issues"] == 3  # 2 created + 1 viewed, the new definition


def test_an_unreadable_evaluations_file_is_named_by_the_contract_check_not_by_the_reuse_check(raw, spark):  # noqa: F811
    _build(raw, spark, W1_DT, ["instances_w1"])
    broken = os.path.join(table_location("evaluations", raw), "part-broken.parquet")
    with open(broken, "wb") as handle:
        handle.write(b"not a parquet file")
    with pytest.raises(DataContractError, match=r"evaluations\.\*: file .*part-broken\.parquet is not a readable"):
        _build(raw, spark, MODELING_DT, ["instances_modeling"])


def test_a_range_takes_from_its_earlier_chunks_what_they_scored_and_computes_the_rest(engine, spark, tmp_path):
    """Chunk 2's modeling cohorts were scored by chunk 1 (taken) or before the range (computed from the events): the
    tables are those of a run that computes everything, and chunk 2 reads the first weeks of its scoring cohorts and
    of the three modeling days it cannot take only. Without resume, a run takes from its own chunks too, and from
    nothing published before it."""
    import shutil

    from churn.core.tables import FEATURE_TABLES
    from churn.core.warehouse import list_partitions, read_partitions
    from churn.dev.simulator import simulate

    start = date(2026, 1, 5)
    taking = engine.model_copy(update={"warehouse": str(tmp_path / "taking"), "feature_chunk_days": 20})
    simulate(start, 70, 8, 5, taking, progress=False)
    shutil.copytree(taking.warehouse, tmp_path / "computing")
    computing = taking.model_copy(update={"warehouse": str(tmp_path / "computing"), "feature_chunk_days": 40})
    first, last = start + timedelta(days=30), start + timedelta(days=69)  # chunks [30, 49] and [50, 69]
    run = dict(spark=spark if engine.feature_engine == "spark" else None)

    taken = build_features(first, last, taking, **run)
    computed = build_features(first, last, computing, resume=False, **run)  # one chunk: takes nothing
    chunk_2_takes = [(start + timedelta(days=n)).isoformat() for n in range(23, 40)]  # scored at dt 30..46 by chunk 1
    assert [c["week1_from_instances_w1"] for c in taken["chunks"]] == [[], chunk_2_takes]
    assert [c["week1_from_instances_w1"] for c in computed["chunks"]] == [[]]
    assert (taken["event_partitions"], computed["event_partitions"]) == (49 + 35, 69)
    for name in FEATURE_TABLES:
        days = list_partitions(name, taking)
        assert days == list_partitions(name, computing) and len(days) == 40
        pd.testing.assert_frame_equal(read_partitions(name, days, taking), read_partitions(name, days, computing))

    # a day whose first week the chunk reads anyway is computed, not taken: 40 days of dt hold scoring cohorts 23..62
    # and modeling cohorts 0..39, and instances_w1 published 23..39 before this run
    again = build_features(first, last, computing, **run)
    assert [c["week1_from_instances_w1"] for c in again["chunks"]] == [[]]
    for name in FEATURE_TABLES:
        days = list_partitions(name, computing)
        pd.testing.assert_frame_equal(read_partitions(name, days, taking), read_partitions(name, days, computing))

    # without resume, over a range published before: its first chunk takes nothing, its second what the first scored
    again = build_features(first + timedelta(days=10), last, taking, resume=False, **run)
    assert [c["week1_from_instances_w1"] for c in again["chunks"]] == [
        [], [(start + timedelta(days=n)).isoformat() for n in range(33, 40)]]
