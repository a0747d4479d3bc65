"""Shared fixtures: a fresh warehouse per test and one local Spark session per test session."""

from __future__ import annotations

import pytest

from churn.settings import get_settings, reset_settings_cache


@pytest.fixture()
def warehouse(tmp_path, monkeypatch):
    """Point CHURN_WAREHOUSE at an empty folder and return the fresh Settings."""
    for name in ("CHURN_RAW_EVALUATIONS", "CHURN_RAW_EVENTS", "CHURN_FEATURE_CONFIG", "CHURN_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CHURN_WAREHOUSE", str(tmp_path / "warehouse"))
    reset_settings_cache()
    yield get_settings()
    reset_settings_cache()


@pytest.fixture(scope="session")
def spark():
    from churn.settings import Settings
    from churn.spark import get_spark

    session = get_spark("churn_tests", Settings(spark_master="local[2]", spark_shuffle_partitions=2))
    yield session
    session.stop()
