"""Fixtures: a moto server on 127.0.0.1 (real HTTP: S3, Glue, Athena) and warehouse helpers."""

from __future__ import annotations

import urllib.request
from datetime import date, timedelta

import pandas as pd
import pytest

from churn.core.feature_config import load_feature_config
from churn.core.settings import Settings
from churn.core.warehouse import write_partition

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
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


@pytest.fixture(scope="session")
def moto_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture()
def aws(moto_server, monkeypatch):
    """Fresh moto state and fake credentials; settings point the clients at the server
    (CHURN_AWS_ENDPOINT_URL, CHURN_S3_ENDPOINT_URL)."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=30).close()
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    # catch-all for any client our code forgot to point somewhere: a closed local port, never AWS
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    return moto_server


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
