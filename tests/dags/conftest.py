"""Airflow test fixtures: the SQLite metadata DB of dag.test() runs (its AIRFLOW_HOME is set by tests/conftest.py
before anything imports airflow), the real ``dags/`` folder in a DagBag, and a trained warehouse.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from churn.core.iceberg_catalog import recover
from churn.core.settings import PROJECT_ROOT, Settings

from ..conftest import AIRFLOW_TEST_HOME

DAGS_FOLDER = PROJECT_ROOT / "dags"
DAG_IDS = ("churn_features", "churn_retrain", "churn_scoring", "churn_monitoring", "churn_outreach")

# Small but trainable: 57 simulated days; 25-day training window with 5 validation days. The world
# ends yesterday (UTC), like the demo's: after a backfill the scheduler runs "today" by itself
# (catchup=False), and that run must find its raw data too.
TODAY = datetime.now(UTC).date()
SIM_DAYS = 57
SIM_START = TODAY - timedelta(days=SIM_DAYS)
SIM_PER_DAY = 80
SMALL_MODEL_ENV = {"CHURN_TRAINING_WINDOW_DAYS": "25", "CHURN_VALIDATION_DAYS": "5"}

@pytest.fixture(scope="session")
def metadata_db():
    """The SQLite metadata DB of dag.test() runs, created once per session and worker (~3 s)."""
    from airflow.utils import db

    db.initdb()
    return AIRFLOW_TEST_HOME


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


CLEARED_ENV = (
    "CHURN_RAW_EVALUATIONS",
    "CHURN_RAW_EVENTS",
    "CHURN_FEATURE_CONFIG",
    "CHURN_S3_ENDPOINT_URL",
    "CHURN_DEPLOYMENT",
    "CHURN_SPARK_RUNNER",
    "CHURN_ALERT_CALLBACK",
    "CHURN_FEATURE_ENGINE",
)
HISTORY = (SIM_START + timedelta(days=30), SIM_START + timedelta(days=54))  # instances_modeling needs 30 days
FIRST_RETRAIN = SIM_START + timedelta(days=55)


def _use_warehouse(mp: pytest.MonkeyPatch, path: Path) -> Settings:
    """Point the environment (what DAG tasks read) at ``path``; returns the Settings a task would build."""
    for name in CLEARED_ENV:
        mp.delenv(name, raising=False)
    mp.setenv("CHURN_WAREHOUSE", str(path))
    for key, value in SMALL_MODEL_ENV.items():
        mp.setenv(key, value)
    return Settings()


@pytest.fixture(scope="session")
def trained_history(tmp_path_factory, spark):
    """Once per session: simulated raw data, features for HISTORY and a champion trained on them.

    Built with the same job functions the DAG tasks run (churn.jobs), in one warm Spark session;
    tests copy it (``warehouse_with_champion``) so they can write to it freely.
    """
    from churn import jobs
    from churn.dev.simulator import simulate

    root = tmp_path_factory.mktemp("trained") / "warehouse"
    with pytest.MonkeyPatch.context() as mp:
        settings = _use_warehouse(mp, root)
        simulate(SIM_START, SIM_DAYS, SIM_PER_DAY, settings.seed, settings, progress=False)
        jobs.build_features(settings, *HISTORY)
        result = jobs.retrain(settings, FIRST_RETRAIN)
        assert result.promoted, result
    return root


@pytest.fixture()
def warehouse_with_champion(trained_history, tmp_path, monkeypatch):
    """A private copy of the trained history; CHURN_WAREHOUSE points at it."""
    target = tmp_path / "warehouse"
    shutil.copytree(trained_history, target)
    settings = _use_warehouse(monkeypatch, target)
    recover(settings)  # the copy's own tables: its writes must not change the shared history
    return settings


@pytest.fixture()
def empty_warehouse(tmp_path, monkeypatch):
    return _use_warehouse(monkeypatch, tmp_path / "warehouse")
