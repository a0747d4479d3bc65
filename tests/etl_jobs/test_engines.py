"""The feature job's two engines run the same step plan: Spark and DuckDB publish identical rows."""

from __future__ import annotations

import shutil
from datetime import date, timedelta

import pandas as pd
import pytest

from churn.core.contract import DataContractError
from churn.core.settings import Settings
from churn.core.tables import FEATURE_TABLES
from churn.core.warehouse import list_partitions, read_partitions
from churn.dev.simulator import simulate
from churn.etl_jobs.build_features import build_features

from .raw_fixture import days, ts, write_evaluations, write_events

START = date(2026, 1, 5)


def _rows(settings: Settings) -> dict[str, pd.DataFrame]:
    return {name: read_partitions(name, list_partitions(name, settings), settings) for name in FEATURE_TABLES}


def test_spark_and_duckdb_publish_identical_tables(tmp_path, spark):
    spark_root, duck_root = tmp_path / "spark", tmp_path / "duck"
    on_spark = Settings(warehouse=str(spark_root), feature_engine="spark", _env_file=None)
    simulate(START, 45, 40, 11, on_spark, progress=False)
    shutil.copytree(spark_root, duck_root)
    on_duck = Settings(warehouse=str(duck_root), feature_engine="duckdb", _env_file=None)
    first, last = START + timedelta(days=30), START + timedelta(days=33)

    from churn.etl_jobs.engines import SHUFFLE_PARTITIONS

    fewest = min(4, int(spark.conf.get(SHUFFLE_PARTITIONS)))  # a few MB: the fewest, up to the session's cap
    a = build_features(first, last, on_spark, spark=spark)
    b = build_features(first, last, on_duck)
    assert (a["engine"], b["engine"]) == ("spark", "duckdb")
    assert a["quality"] == b["quality"] and a["quality"]["events_read"] > 10_000
    # Spark's chunk was sized from the bytes it reads; DuckDB sizes itself
    assert a["chunks"][0]["shuffle_partitions"] == fewest and "shuffle_partitions" not in b["chunks"][0]
    assert sum(p["rows"] for p in b["tables"]["instances_modeling"]["partitions"]) > 50
    spark_rows, duck_rows = _rows(on_spark), _rows(on_duck)
    for name in FEATURE_TABLES:
        assert list_partitions(name, on_duck) == list_partitions(name, on_spark) == days(first, last)
        pd.testing.assert_frame_equal(duck_rows[name], spark_rows[name])  # same rows, same order, same types


def test_duckdb_enforces_the_same_contract(warehouse):
    settings = Settings(warehouse=warehouse.warehouse, feature_engine="duckdb", _env_file=None)
    write_evaluations(settings, [{"instance_id": "A", "eval_start_date": START, "converted_date": None}])
    bad = [{"instance_id": "A", "event_time": ts(START, 10), "event_type": None}]
    write_events(settings, bad, days(START - timedelta(days=31), START + timedelta(days=8)))
    with pytest.raises(DataContractError, match=r"events\.instance_id/user_id/event_time/event_type: 1 rows") as info:
        build_features(START + timedelta(days=7), START + timedelta(days=7), settings, tables=["instances_w1"])
    assert [r["instance_id"] for r in info.value.examples] == ["A"]


def test_spark_computes_the_week1_features_of_the_deduplicated_events_without_another_shuffle(spark):
    """The deduplicated events are distributed by trial (cohort_events.sql): the week-1 aggregations by trial and user
    that read them are planned without an exchange of their own (at 10k trials/day, three fewer stages per chunk), in
    the same query as the deduplication (the events are not cached)."""
    from churn.core.feature_config import load_feature_config
    from churn.etl_jobs.build_features import cohort_events_sql, week1_features_sql
    from churn.etl_jobs.engines import SparkEngine

    settings = Settings(_env_file=None)
    config = load_feature_config(settings)
    engine = SparkEngine(settings, spark)
    spark.sql("SELECT CONCAT('i', CAST(id % 50 AS STRING)) AS instance_id, DATE '2026-01-05' AS eval_start_date, "
              "TIMESTAMP '2026-01-05 00:00:00' AS week_start, TIMESTAMP '2026-01-12 00:00:00' AS week_end "
              "FROM range(50)").createOrReplaceTempView("cohort")
    spark.sql("SELECT CONCAT('i', CAST(id % 60 AS STRING)) AS instance_id, CONCAT('u', CAST(id % 7 AS STRING)) AS user_id, "
              "TIMESTAMP '2026-01-05 00:00:00' + make_interval(0, 0, 0, 0, CAST(id % 200 AS INT), 0, 0) AS event_time, "
              "'issue_created' AS event_type, 'web' AS platform, CAST(NULL AS TIMESTAMP) AS received_at, "
              "to_date(TIMESTAMP '2026-01-05 00:00:00' + make_interval(0, 0, 0, 0, CAST(id % 200 AS INT), 0, 0)) "
              "AS dt FROM range(5000)").createOrReplaceTempView("events_raw")
    engine.create_view("events", cohort_events_sql("received_at"))
    week1 = spark.sql(week1_features_sql(config, settings), args={"first_week_days": settings.first_week_days})
    assert week1.count() == 50
    plan = week1._jdf.queryExecution().executedPlan().toString()
    shuffles = [line for line in plan.splitlines() if "Exchange hashpartitioning" in line]
    assert "REPARTITION_BY_COL" in plan and not [line for line in shuffles if "user_id" in line or "day_index" in line]
    engine.release()


def test_a_chunks_shuffle_partitions_follow_the_raw_bytes_it_reads_up_to_the_sessions(spark):
    """One shuffle partition per 96 MB of raw Parquet, at least 4, at most the session's (setting or spark-submit);
    the session given to the engine gets its own value back when the engine closes."""
    from churn.etl_jobs.engines import SHUFFLE_PARTITIONS, SparkEngine, shuffle_partitions

    assert [shuffle_partitions(mb * 2**20, 32) for mb in (0, 67, 636, 2000, 3100, 9000)] == [4, 4, 7, 21, 32, 32]
    assert shuffle_partitions(3100 * 2**20, 2) == 2
    before = spark.conf.get(SHUFFLE_PARTITIONS)
    spark.conf.set(SHUFFLE_PARTITIONS, "12")
    try:
        engine = SparkEngine(Settings(_env_file=None), spark)
        engine.size_for(636 * 2**20)
        assert spark.conf.get(SHUFFLE_PARTITIONS) == "7"
        engine.size_for(5000 * 2**20)
        assert spark.conf.get(SHUFFLE_PARTITIONS) == "12"
        engine.close()
        assert spark.conf.get(SHUFFLE_PARTITIONS) == "12"
    finally:
        spark.conf.set(SHUFFLE_PARTITIONS, before)


def test_the_spark_cache_yields_its_memory_to_aggregations_and_is_compressed(spark):
    """What the feature job caches must not hold half the unified memory while the aggregations spill (a 30-day
    chunk at 10k trials/day spilled 35 GB); its small cached tables are compressed (test_memory_cliff)."""
    assert spark.conf.get("spark.memory.storageFraction") == "0.1"
    assert spark.conf.get("spark.sql.inMemoryColumnarStorage.compressed") == "true"


@pytest.mark.parametrize("engine_name", ["spark", "duckdb"])
def test_partition_day_and_day_index_are_exact_at_the_boundaries(tmp_path, spark, engine_name):
    """outside_partition and day_index are integer arithmetic on microseconds (no time-zone conversion per event):
    an event is in its dt partition from 00:00:00.000000 to 23:59:59.999999 UTC, and its day index turns at each
    midnight after eval start, on both engines, with dt typed DATE when the files are read."""
    from datetime import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    from churn.etl_jobs.build_features import EVENT_TYPES, cohort_events_sql
    from churn.etl_jobs.engines import DuckDBEngine, SparkEngine

    settings = Settings(_env_file=None)
    day = date(2026, 1, 6)  # the partition; the trial started the day before
    micro = timedelta(microseconds=1)
    midnight = datetime(2026, 1, 6)
    times = {"day starts": midnight, "day ends": midnight + timedelta(days=1) - micro,
             "day before": midnight - micro, "day after": midnight + timedelta(days=1),
             "before eval start": midnight - timedelta(days=1) - micro}
    folder = tmp_path / "events" / f"dt={day}"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({
        "instance_id": ["A"] * len(times), "user_id": list(times), "event_time": pa.array(times.values(),
                                                                                         pa.timestamp("us", "UTC")),
        "event_type": ["issue_created"] * len(times), "platform": ["web"] * len(times),
    }), folder / "part-0.parquet")
    engine = SparkEngine(settings, spark) if engine_name == "spark" else DuckDBEngine(settings)
    try:
        engine.register_parquet("events_raw", [str(folder / "part-0.parquet")], dict(EVENT_TYPES),
                                hive_root=str(tmp_path / "events"))
        engine.create_view("cohort", "SELECT 'A' AS instance_id, DATE '2026-01-05' AS eval_start_date, "
                                     "TIMESTAMP '2026-01-05 00:00:00' AS week_start, "
                                     "TIMESTAMP '2026-01-12 00:00:00' AS week_end")
        engine.create_view("events", cohort_events_sql("CAST(NULL AS TIMESTAMP)"))
        rows = {r["user_id"]: (r["outside_partition"], r["day_index"])
                for r in engine.rows("SELECT user_id, outside_partition, day_index FROM events")}
    finally:
        engine.close()  # a Spark engine leaves the shared session running
    assert rows == {"day starts": (False, 1), "day ends": (False, 1), "day before": (True, 0),
                    "day after": (True, 2), "before eval start": (True, None)}
