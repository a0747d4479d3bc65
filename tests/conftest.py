"""Shared fixtures: a fresh warehouse per test and one local Spark session per test session."""

from __future__ import annotations

import pytest

from churn.core.settings import Settings

CHURN_TEST_ENV = ("CHURN_RAW_EVALUATIONS", "CHURN_RAW_EVENTS", "CHURN_FEATURE_CONFIG", "CHURN_S3_ENDPOINT_URL",
                  "CHURN_FEATURE_ENGINE", "CHURN_DEPLOYMENT", "CHURN_ALERT_CALLBACK")


@pytest.fixture()
def warehouse(tmp_path, monkeypatch):
    """Point CHURN_WAREHOUSE at an empty folder and return the Settings an entry point would build."""
    for name in CHURN_TEST_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHURN_WAREHOUSE", str(tmp_path / "warehouse"))
    return Settings()


@pytest.fixture(scope="session")
def spark():
    from churn.core.spark import get_spark

    session = get_spark("churn_tests", Settings(spark_master="local[2]", spark_shuffle_partitions=2))
    yield session
    session.stop()
