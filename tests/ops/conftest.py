"""Fixtures: settings from an environment and warehouse helpers (the moto server is in tests/conftest.py)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from churn.core.feature_config import load_feature_config
from churn.core.settings import Settings
from churn.core.warehouse import write_partition

CHURN_ENV = (
    "CHURN_WAREHOUSE",
    "CHURN_RAW_EVALUATIONS",
    "CHURN_RAW_EVENTS",
    "CHURN_FEATURE_CONFIG",
    "CHURN_S3_ENDPOINT_URL",
    "CHURN_ATHENA_DATABASE",
    "CHURN_ATHENA_OUTPUT",
    "CHURN_AWS_ENDPOINT_URL",
    "CHURN_DEPLOYMENT",
    "CHURN_FEATURE_ENGINE",
    "CHURN_TABLE_CATALOG",
    "CHURN_TABLE_CATALOG_URI",
)


@pytest.fixture()
def settings_for(monkeypatch):
    """settings_for(warehouse=..., **CHURN_vars) -> the Settings an entry point would build from that environment."""

    def make(**values: str) -> Settings:
        for name in CHURN_ENV:
            monkeypatch.delenv(name, raising=False)
        for key, value in values.items():
            monkeypatch.setenv(f"CHURN_{key.upper()}", str(value))
        return Settings()

    return make


def feature_frame(table: str, dt: date, rows: int, settings: Settings, prefix: str = "i") -> pd.DataFrame:
    """A feature partition with the documented columns (in order) and simple values."""
    eval_start = dt - timedelta(days=7 if table == "instances_w1" else settings.label_window_days)
    data = {}
    for name, kind in load_feature_config(settings).table_columns(table):
        if name == "instance_id":
            data[name] = [f"{prefix}{dt:%m%d}-{k}" for k in range(rows)]
        elif kind == "date":
            data[name] = [eval_start] * rows
        elif kind == "double":
            data[name] = [0.5 * k for k in range(rows)]
        elif kind == "int":
            data[name] = pd.array([k % 2 for k in range(rows)], dtype="int32")
        else:
            data[name] = [k for k in range(rows)]
    return pd.DataFrame(data)


def publish_features(settings: Settings, table: str, days: dict[date, int]) -> None:
    for dt, rows in days.items():
        write_partition(table, dt, feature_frame(table, dt, rows, settings), settings)
