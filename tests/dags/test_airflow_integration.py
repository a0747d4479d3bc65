"""End to end with a real scheduler, dag-processor and api-server on PostgreSQL (the test's own embedded server).

`airflow backfill create` of churn_features over 2 days must lead to one churn_scoring run per day,
named by its partition key, via the partitioned asset events; a second backfill with `--reprocess-behavior completed` rewrites every partition
and must leave identical rows in the feature and prediction tables.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pandas as pd
import pytest

from churn.core.tables import FEATURE_TABLES, table

from .conftest import FIRST_RETRAIN, SMALL_MODEL_ENV

# two days ending today: the scheduler runs today by itself after a backfill (catchup=False), which must be one of them
BACKFILL = [FIRST_RETRAIN + timedelta(days=n) for n in (1, 2)]
pytestmark = pytest.mark.slow


OUTPUTS = [*FEATURE_TABLES, "instances_w1_scored"]


def _contents(settings) -> dict:
    """Every published row of the feature and prediction tables (reruns are compared by rows, not bytes:
    Iceberg data files have unique names)."""
    from churn.core.warehouse import list_partitions, read_partitions

    return {t: read_partitions(t, list_partitions(t, settings), settings) for t in OUTPUTS}


def _partition_versions(settings) -> dict[str, int | None]:
    """The snapshot that last wrote each backfilled partition: a rewrite changes it."""
    from churn.core.warehouse import partition_snapshot

    return {f"{t}/dt={d}": (partition_snapshot(t, d, settings) or {}).get("snapshot_id") for t in OUTPUTS
            for d in BACKFILL}


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
        scored = set(list_partitions(table("instances_w1_scored"), settings)) >= set(BACKFILL)
        rewritten = True
        if scored and previous_inodes is not None:
            now = _partition_versions(settings)
            rewritten = all(now[k] != v for k, v in previous_inodes.items())
        state = {"backfill_done": done, "busy": busy, "scored": scored, "rewritten": rewritten}
        if done and scored and rewritten and not busy:
            return
        time.sleep(1)
    raise AssertionError(f"backfill and scoring did not finish in {timeout} s: {state}")


@pytest.mark.timeout(900)
def test_backfill_scores_the_same_days_and_reprocessing_gives_identical_rows(warehouse_with_champion, tmp_path):
    from churn.dev.airflow_local import LocalAirflow, free_port
    from churn.dev.metadata_db import EmbeddedPostgres

    settings = warehouse_with_champion
    airflow = LocalAirflow(
        home=tmp_path / "airflow",
        db=EmbeddedPostgres(folder=tmp_path / "airflow" / "postgres"),  # never a shared server's database
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
            # meanwhile another checkout resets its own metadata DB, as `make demo --fresh` does: this one's
            # runs must not notice (they once died when a second demo dropped the shared database)
            other = LocalAirflow(home=tmp_path / "other-clone" / ".airflow", port=free_port(),
                                 db=EmbeddedPostgres(folder=tmp_path / "other-clone" / ".airflow" / "postgres"))
            other.db.start()
            try:
                assert other.db.port != airflow.db.port
                other.db.drop_database()
                other.db.ensure_database()
            finally:
                other.db.stop()
            _wait(api, settings, None)
            runs = api("GET", "/dags/churn_features/dagRuns?limit=100")["dag_runs"]
            assert sorted(r["logical_date"][:10] for r in runs if r["run_type"] == "backfill") == [
                d.isoformat() for d in BACKFILL
            ]
            scoring_runs = api("GET", "/dags/churn_scoring/dagRuns?limit=100")["dag_runs"]
            assert scoring_runs and all(r["run_type"] == "asset_triggered" for r in scoring_runs)
            # one scoring run per backfilled day, named by it (the partition key the UI shows)
            assert sorted(r["partition_key"] for r in scoring_runs) == [d.isoformat() for d in BACKFILL]
            first = _contents(settings)
            assert len(first["instances_w1_scored"]) > 0
            versions = _partition_versions(settings)

            airflow.airflow(*backfill, "--reprocess-behavior", "completed", capture=True)
            _wait(api, settings, versions)
            second = _contents(settings)
            for name, frame in first.items():  # predictions now name the rebuilt features' snapshot
                pd.testing.assert_frame_equal(second[name].drop(columns="features_snapshot_id", errors="ignore"),
                                              frame.drop(columns="features_snapshot_id", errors="ignore"))
            assert set(second["instances_w1_scored"]["features_snapshot_id"]) != set(
                first["instances_w1_scored"]["features_snapshot_id"])
    finally:
        airflow.db.stop()
    assert airflow.db.running_port() is None  # stopping Airflow stopped its metadata DB
