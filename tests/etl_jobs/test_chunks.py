"""A range is built in chunks of CHURN_FEATURE_CHUNK_DAYS, each committed on its own with the fingerprint of
its inputs; a rerun after a crash keeps the chunks already committed with the same inputs."""

from __future__ import annotations

import os
from datetime import date, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churn.core.contract import DataContractError
from churn.core.tables import table, table_location
from churn.core.warehouse import list_partitions, partition_snapshot, read_partitions
from churn.etl_jobs.build_features import INPUTS_PROPERTY, build_features, chunk_ranges, plan_chunks

from .test_week1_features import W1_DT, raw  # noqa: F401 - the fixture

START, END = W1_DT - timedelta(days=1), W1_DT + timedelta(days=4)  # 6 days: chunks of 2 -> 3 chunks
CHUNKS = chunk_ranges(START, END, 2)
ONLY_LAST_CHUNK_READS = date(2026, 3, 13)  # an event day of the third chunk's cohorts only
ONLY_FIRST_CHUNK_READS = date(2026, 3, 2)


def test_chunks_cover_the_range_in_order():
    assert chunk_ranges(date(2026, 1, 1), date(2026, 1, 5), 2) == [
        (date(2026, 1, 1), date(2026, 1, 2)), (date(2026, 1, 3), date(2026, 1, 4)), (date(2026, 1, 5), date(2026, 1, 5))]
    assert chunk_ranges(date(2026, 1, 1), date(2026, 1, 1), 30) == [(date(2026, 1, 1), date(2026, 1, 1))]


def test_chunks_are_shortened_while_one_would_read_more_raw_data_than_the_budget(raw):  # noqa: F811
    from churn.core.feature_config import load_feature_config

    tables, config = [table("instances_w1"), table("instances_modeling")], load_feature_config(raw)
    chunks, inputs = plan_chunks(START, END, tables, raw, config)
    assert chunks == [(START, END)]  # the fixture's raw files are far under the default 4 GB
    read = inputs[0][1] / 2**20
    per_day = max(r for _, r in plan_chunks(START, END, tables, raw.model_copy(
        update={"feature_chunk_max_mb": 1e-9}), config)[1]) / 2**20
    assert per_day < read
    for budget, expected in ((1e-9, chunk_ranges(START, END, 1)),  # less than a day reads: days
                             (read, [(START, END)]),  # exactly what the range reads: one chunk
                             (read * 0.99, chunk_ranges(START, END, 3))):  # a little less: halved
        assert plan_chunks(START, END, tables, raw.model_copy(update={"feature_chunk_max_mb": budget}),
                           config)[0] == expected, budget


def _chunked(settings):
    return settings.model_copy(update={"feature_chunk_days": 2})


def _snapshots(settings) -> dict[str, int]:
    return {f"{t}/{d}": partition_snapshot(t, d, settings)["snapshot_id"]
            for t in ("instances_w1", "instances_modeling") for d in list_partitions(t, settings)}


def _rows(settings) -> dict[str, pd.DataFrame]:
    return {t: read_partitions(t, list_partitions(t, settings), settings) for t in ("instances_w1", "instances_modeling")}


def _event_file(settings, day: date, name: str) -> str:
    return os.path.join(table_location("events", settings), f"dt={day.isoformat()}", name)


def test_a_crash_in_a_later_chunk_keeps_the_committed_ones_and_a_rerun_resumes_there(raw, spark):  # noqa: F811
    settings = _chunked(raw)
    bad = _event_file(settings, ONLY_LAST_CHUNK_READS, "part-bad.parquet")
    pq.write_table(pa.table({"instance_id": ["A"], "user_id": ["u1"]}), bad)  # no event_time, no event_type
    with pytest.raises(DataContractError, match="part-bad.parquet"):
        build_features(START, END, settings, spark=spark)
    # the first two chunks were committed before the third failed; the third published nothing
    first_two = [d for first, last in CHUNKS[:2] for d in (first, last)]
    assert list_partitions("instances_w1", settings) == first_two
    committed = _snapshots(settings)

    os.remove(bad)  # the producer fixes its file; the rerun starts where the crash was
    result = build_features(START, END, settings, spark=spark)
    assert [c["status"] for c in result["chunks"]] == ["kept", "kept", "built"]
    after = _snapshots(settings)
    assert {k: after[k] for k in committed} == committed  # nothing committed before was rewritten
    assert list_partitions("instances_w1", settings) == [START + timedelta(days=n) for n in range(6)]
    assert [p["dt"] for p in result["tables"]["instances_w1"]["partitions"]] == [
        (START + timedelta(days=n)).isoformat() for n in range(6)]
    assert sum(p["rows"] for p in result["tables"]["instances_w1"]["partitions"]) == len(
        _rows(settings)["instances_w1"])

    # the resumed range holds exactly the rows of one uninterrupted build
    resumed = _rows(settings)
    build_features(START, END, settings, spark=spark, resume=False)
    for name, frame in _rows(settings).items():
        pd.testing.assert_frame_equal(frame, resumed[name])


def test_a_chunk_whose_inputs_changed_is_rebuilt_and_the_others_kept(raw, spark):  # noqa: F811
    settings = _chunked(raw)
    build_features(START, END, settings, spark=spark)
    before = _snapshots(settings)
    late = _event_file(settings, ONLY_FIRST_CHUNK_READS, "part-late.parquet")  # a late file lands for one day
    pq.write_table(pq.read_table(_event_file(settings, ONLY_FIRST_CHUNK_READS, "part-00000.parquet")), late)
    result = build_features(START, END, settings, spark=spark)
    assert [c["status"] for c in result["chunks"]] == ["built", "kept", "kept"]
    after = _snapshots(settings)
    first_chunk = {f"{t}/{d}" for t in ("instances_w1", "instances_modeling") for d in CHUNKS[0]}
    assert all(after[k] != before[k] for k in first_chunk)
    assert all(after[k] == before[k] for k in before if k not in first_chunk)
    # every commit names the fingerprint of the inputs it was built from
    properties = partition_snapshot("instances_w1", START, settings)["properties"]
    assert len(properties[INPUTS_PROPERTY]) == 32


def test_a_day_is_always_rebuilt(raw, spark):  # noqa: F811
    """Resuming is for the chunks of a range: a single-chunk run (the daily run, a backfill) replaces its day."""
    settings = _chunked(raw)
    build_features(W1_DT, W1_DT, settings, spark=spark)
    snapshot = partition_snapshot("instances_w1", W1_DT, settings)["snapshot_id"]
    result = build_features(W1_DT, W1_DT, settings, spark=spark)
    assert [c["status"] for c in result["chunks"]] == ["built"]
    assert partition_snapshot("instances_w1", W1_DT, settings)["snapshot_id"] != snapshot


def test_a_day_staged_in_several_files_is_published_in_instance_order(raw, spark, tmp_path):  # noqa: F811
    """DuckDB writes a day in several files when it runs several threads; whatever the files' order, the
    published day is sorted by instance_id, so both engines publish the same rows in the same order."""
    from churn.core.warehouse import read_partition
    from churn.etl_jobs.build_features import _publish_range

    build_features(W1_DT, W1_DT, raw, tables=["instances_w1"], spark=spark)
    day = pa.Table.from_pandas(read_partition("instances_w1", W1_DT, raw).drop(columns="dt"), preserve_index=False)
    assert day.num_rows >= 2
    backwards = day.sort_by([("instance_id", "descending")])
    folder = tmp_path / "stage" / f"dt={W1_DT.isoformat()}"
    folder.mkdir(parents=True)
    for n in range(backwards.num_rows):  # one file per row, file names in the reverse of instance order
        pq.write_table(backwards.slice(n, 1), folder / f"part-{n:03d}.parquet")
    _publish_range("instances_w1", str(tmp_path / "stage"), W1_DT, W1_DT, raw)
    ids = read_partition("instances_w1", W1_DT, raw)["instance_id"].tolist()
    assert ids == sorted(ids)
