"""The feature job's two engines run the same step plan: Spark and DuckDB publish byte-identical partitions."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from churn.core.contract import DataContractError
from churn.core.settings import Settings
from churn.tools.simulator import simulate
from etl_jobs.build_features import build_features

from .raw_fixture import days, ts, write_evaluations, write_events

START = date(2026, 1, 5)


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "features").rglob("*")) if p.is_file()}


def test_spark_and_duckdb_publish_identical_tables(tmp_path, spark):
    spark_root, duck_root = tmp_path / "spark", tmp_path / "duck"
    on_spark = Settings(warehouse=str(spark_root), feature_engine="spark", _env_file=None)
    simulate(START, 45, 40, 11, on_spark, progress=False)
    shutil.copytree(spark_root, duck_root)
    on_duck = Settings(warehouse=str(duck_root), feature_engine="duckdb", _env_file=None)
    first, last = START + timedelta(days=30), START + timedelta(days=33)

    a = build_features(first, last, on_spark, spark=spark)
    b = build_features(first, last, on_duck)
    assert (a["engine"], b["engine"]) == ("spark", "duckdb")
    assert a["quality"] == b["quality"] and a["quality"]["events_read"] > 10_000
    assert sum(p["rows"] for p in b["tables"]["instances_modeling"]["partitions"]) > 50
    spark_files, duck_files = _files(spark_root), _files(duck_root)
    assert len(spark_files) == 2 * 4 * 2  # two tables, four days, a data file and a manifest each
    assert duck_files == spark_files


def test_duckdb_enforces_the_same_contract(warehouse):
    settings = Settings(warehouse=warehouse.warehouse, feature_engine="duckdb", _env_file=None)
    write_evaluations(settings, [{"instance_id": "A", "eval_start_date": START, "converted_date": None}])
    bad = [{"instance_id": "A", "event_time": ts(START, 10), "event_type": None}]
    write_events(settings, bad, days(START - timedelta(days=31), START + timedelta(days=8)))
    with pytest.raises(DataContractError, match=r"events\.instance_id/user_id/event_time/event_type: 1 rows") as info:
        build_features(START + timedelta(days=7), START + timedelta(days=7), settings, tables=["instances_w1"])
    assert [r["instance_id"] for r in info.value.examples] == ["A"]
