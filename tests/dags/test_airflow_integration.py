"""End to end with a real scheduler, dag-processor and api-server on PostgreSQL (127.0.0.1:5432).

`airflow backfill create` of churn_features over 3 days must lead to churn_scoring of those days via
the asset events; a second backfill with `--reprocess-behavior completed` rewrites every partition
and must leave byte-identical files under features/ and predictions/.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from churn.core.tables import FEATURE_TABLES, table_location

from .conftest import FIRST_RETRAIN, SMALL_MODEL_ENV

BACKFILL = [FIRST_RETRAIN + timedelta(days=n) for n in range(3)]
pytestmark = pytest.mark.slow


def _postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under features/ and predictions/ (a few MB here), by relative path."""
    out = {}
    for folder in ("features", "predictions"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "_staging" not in path.parts:
                out[str(path.relative_to(root))] = path.read_bytes()
    return out


def _digest(snapshot: dict[str, bytes]) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in snapshot.items()}


def _explain(before: dict[str, bytes], after: dict[str, bytes], differing: list[str]) -> str:
    """Tell changed rows from equal rows written differently (a non-deterministic Parquet writer)."""
    import io

    import pyarrow.parquet as pq

    same_rows = [
        k
        for k in differing
        if k.endswith(".parquet") and pq.read_table(io.BytesIO(before[k])).equals(pq.read_table(io.BytesIO(after[k])))
    ]
    return (
        f"{len(differing)} files differ after reprocessing: {differing[:6]}; "
        f"{len(same_rows)} of them hold exactly the same rows, so their writer is not byte-deterministic "
        "(Spark's parquet-mr lists column-chunk encodings in a per-JVM order: publish through pyarrow)"
    )


def _partition_inodes(settings) -> dict[str, int]:
    """Publishing swaps a new folder in, so a rewritten partition has a new inode."""
    paths = [table_location(t, settings) for t in FEATURE_TABLES] + [table_location("instances_w1_scored", settings)]
    return {f"{p}/dt={d}": os.stat(f"{p}/dt={d}").st_ino for p in paths for d in BACKFILL}


def _wait(runner_api, settings, previous_inodes: dict[str, int] | None, timeout: float = 600) -> None:
    """Until the backfill completed, every backfilled day is (re)scored and churn_scoring is idle."""
    from churn.core.warehouse import list_partitions

    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        backfills = runner_api("GET", "/backfills?dag_id=churn_features")["backfills"]
        done = bool(backfills) and all(b["completed_at"] for b in backfills)
        features = [r for r in runner_api("GET", "/dags/churn_features/dagRuns?limit=100")["dag_runs"]]
        scoring = runner_api("GET", "/dags/churn_scoring/dagRuns?limit=100")["dag_runs"]
        failed = [r["dag_run_id"] for r in features + scoring if r["state"] == "failed"]
        assert not failed, f"failed runs: {failed}"
        busy = [r["dag_run_id"] for r in features + scoring if r["state"] in ("queued", "running")]
        scored = set(list_partitions(table_location("instances_w1_scored", settings), settings)) >= set(BACKFILL)
        rewritten = True
        if scored and previous_inodes is not None:
            now = _partition_inodes(settings)
            rewritten = all(now[k] != v for k, v in previous_inodes.items())
        state = {"backfill_done": done, "busy": busy, "scored": scored, "rewritten": rewritten}
        if done and scored and rewritten and not busy:
            return
        time.sleep(3)
    raise AssertionError(f"backfill and scoring did not finish in {timeout} s: {state}")


@pytest.mark.timeout(900)
def test_backfill_scores_the_same_days_and_reprocessing_is_byte_identical(warehouse_with_champion, tmp_path):
    if not _postgres_reachable():
        pytest.skip("no PostgreSQL on 127.0.0.1:5432: the Airflow integration test needs it as metadata DB")
    from churn.tools.airflow_local import LocalAirflow, free_port

    settings = warehouse_with_champion
    airflow = LocalAirflow(
        home=tmp_path / "airflow",
        database=f"churn_airflow_test_{uuid.uuid4().hex[:8]}",
        port=free_port(),
        extra_env={"CHURN_WAREHOUSE": settings.warehouse, **SMALL_MODEL_ENV},
    )
    backfill = [
        "backfill",
        "create",
        "--dag-id",
        "churn_features",
        "--from-date",
        BACKFILL[0].isoformat(),
        "--to-date",
        BACKFILL[-1].isoformat(),
    ]
    try:
        with airflow.running():
            token = airflow.token()

            def api(method, path, body=None):
                return airflow.api(method, path, body, token=token)

            deadline = time.monotonic() + 120
            while {d["dag_id"] for d in api("GET", "/dags?limit=100")["dags"]} < {
                "churn_features",
                "churn_scoring",
            } and time.monotonic() < deadline:
                time.sleep(1)

            airflow.airflow(*backfill, capture=True)
            _wait(api, settings, None)
            runs = api("GET", "/dags/churn_features/dagRuns?limit=100")["dag_runs"]
            assert sorted(r["logical_date"][:10] for r in runs if r["run_type"] == "backfill") == [
                d.isoformat() for d in BACKFILL
            ]
            scoring_runs = api("GET", "/dags/churn_scoring/dagRuns?limit=100")["dag_runs"]
            assert scoring_runs and all(r["run_type"] == "asset_triggered" for r in scoring_runs)
            first = _snapshot(Path(settings.warehouse))
            assert any(k.startswith("predictions/") for k in first)
            inodes = _partition_inodes(settings)

            airflow.airflow(*backfill, "--reprocess-behavior", "completed", capture=True)
            _wait(api, settings, inodes)
            second = _snapshot(Path(settings.warehouse))
            assert second.keys() == first.keys()
            before, after = _digest(first), _digest(second)
            differing = sorted(k for k in before if before[k] != after[k])
            assert not differing, _explain(first, second, differing)
    finally:
        airflow.drop_database()
