"""No memory cliff: a range whose cohorts would not fit a broadcast in a deliberately small driver still
completes (the SQL once forced BROADCAST of the cohorts; at 10k trials a day a 90-day range died with
"Not enough memory to build and broadcast the table" in a 1 GB driver)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churn.core.contract import EVALUATIONS_SCHEMA, EVENTS_OPTIONAL, EVENTS_SCHEMA
from churn.core.settings import PROJECT_ROOT, Settings
from churn.core.tables import table_location

pytestmark = pytest.mark.slow

TRIALS_PER_DAY = 40_000
DAYS = 30
FIRST_DT = date(2026, 3, 8)  # instances_w1 dt of the first cohort (started 2026-03-01)


def write_raw(settings: Settings) -> None:
    """1.2 M trials over 30 days of cohorts, one event each: a cohort far larger than a small driver can broadcast."""
    starts = [FIRST_DT - timedelta(days=7) + timedelta(days=d) for d in range(DAYS)]
    ids = pa.array([f"i-{d:02d}-{n:06d}" for d in range(DAYS) for n in range(TRIALS_PER_DAY)])
    evaluations = pa.table({
        "instance_id": ids,
        "eval_start_date": pa.array([s for s in starts for _ in range(TRIALS_PER_DAY)], pa.date32()),
        "converted_date": pa.nulls(len(ids), pa.date32()),
    }, schema=pa.schema([f.with_nullable(True) for f in EVALUATIONS_SCHEMA]))
    os.makedirs(table_location("evaluations", settings), exist_ok=True)
    pq.write_table(evaluations, os.path.join(table_location("evaluations", settings), "part-00000.parquet"),
                   row_group_size=100_000)
    schema = pa.schema([f.with_nullable(True) for f in [*EVENTS_SCHEMA, *EVENTS_OPTIONAL]])
    for offset in range(-1, DAYS + 8):
        day = starts[0] + timedelta(days=offset)
        chosen = [f"i-{offset:02d}-{n:06d}" for n in range(0, TRIALS_PER_DAY, 97)] if 0 <= offset < DAYS else []
        at = datetime(day.year, day.month, day.day, 12)
        rows = pa.table({"instance_id": chosen, "user_id": ["u1"] * len(chosen),
                         "event_time": pa.array([at] * len(chosen), pa.timestamp("us", tz="UTC")),
                         "event_type": ["issue_created"] * len(chosen), "platform": ["web"] * len(chosen),
                         "received_at": pa.array([at] * len(chosen), pa.timestamp("us", tz="UTC"))}, schema=schema)
        folder = os.path.join(table_location("events", settings), f"dt={day.isoformat()}")
        os.makedirs(folder, exist_ok=True)
        pq.write_table(rows, os.path.join(folder, "part-00000.parquet"))


@pytest.mark.timeout(900)
def test_a_long_range_completes_in_a_small_driver(tmp_path):
    settings = Settings(warehouse=str(tmp_path / "warehouse"), _env_file=None)
    write_raw(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    env.update({"CHURN_WAREHOUSE": settings.warehouse, "CHURN_SPARK_DRIVER_MEMORY": "512m",
                "CHURN_FEATURE_CHUNK_DAYS": str(DAYS), "CHURN_SPARK_MASTER": "local[2]"})
    end = FIRST_DT + timedelta(days=DAYS - 1)
    done = subprocess.run([sys.executable, "-m", "churn.etl_jobs.build_features", "--start", FIRST_DT.isoformat(),
                           "--end", end.isoformat(), "--table", "instances_w1"],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=850)
    assert done.returncode == 0, done.stderr[-3000:]
    # completing is not enough: a broadcast of the cohort that spills to disk is the cliff's edge (Spark logs it)
    assert "Not enough space to cache broadcast" not in done.stdout + done.stderr
    from churn.core.warehouse import partition_rows

    rows = partition_rows("instances_w1", [FIRST_DT + timedelta(days=d) for d in range(DAYS)], settings)
    assert set(rows.values()) == {TRIALS_PER_DAY}, json.dumps({str(k): v for k, v in rows.items()})
