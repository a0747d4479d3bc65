"""Fixtures for the model tests: a real S3 API (moto server on 127.0.0.1) and trained registries.

Training is the slow part, so two registries are trained once per session on the same synthetic
data (tests/models/synthetic.py): one on S3, one in a local folder. Tests that change a registry
work on a copy of the local one.
"""

from __future__ import annotations

import shutil
import socket
from datetime import date
from types import SimpleNamespace

import pytest

from churn.core.iceberg_catalog import recover
from churn.core.settings import Settings
from churn.dev.synthetic import write_modeling

RUN_DATE = date(2025, 6, 2)
# A shorter window than production's 90 days keeps the number of S3 objects (and requests) small;
# the window length is a setting like any other.
WINDOW = 14
VALIDATION = 7
PER_DAY = 800
BUCKET = "churn-test"
SCENARIO = {"training_window_days": WINDOW, "validation_days": VALIDATION}


def set_scenario_env(mp: pytest.MonkeyPatch) -> None:
    for key, value in SCENARIO.items():
        mp.setenv(f"CHURN_{key.upper()}", str(value))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def set_s3_env(mp: pytest.MonkeyPatch, endpoint: str, prefix: str) -> None:
    mp.setenv("CHURN_WAREHOUSE", f"s3://{BUCKET}/{prefix}")
    mp.setenv("CHURN_S3_ENDPOINT_URL", endpoint)
    mp.setenv("CHURN_TABLE_CATALOG", "glue")  # the production catalog, on moto's Glue API
    mp.setenv("CHURN_AWS_ENDPOINT_URL", endpoint)
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    set_scenario_env(mp)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "CHURN_FEATURE_CONFIG"):
        mp.delenv(name, raising=False)


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 API server on a free local port, with one bucket; stopped at the end of the session."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_trained(s3_server):
    """An S3 warehouse with WINDOW days of instances_modeling and a champion, with settings from the environment."""
    from churn.models.train import retrain

    with pytest.MonkeyPatch.context() as mp:
        set_s3_env(mp, s3_server, "trained")
        settings = Settings()
        data = write_modeling(settings, RUN_DATE, PER_DAY)
        result = retrain(RUN_DATE, settings)
    return SimpleNamespace(settings=settings, data=data, result=result, endpoint=s3_server)


@pytest.fixture()
def s3(monkeypatch, s3_trained):
    """The trained S3 warehouse, with CHURN_* / AWS_* pointing at it for this test."""
    set_s3_env(monkeypatch, s3_trained.endpoint, "trained")
    return s3_trained


@pytest.fixture(scope="session")
def local_trained(tmp_path_factory):
    """The same data and training in a local folder (same seed: must give the same model as on S3)."""
    from churn.models.train import retrain

    root = tmp_path_factory.mktemp("local_trained") / "warehouse"
    settings = Settings(warehouse=str(root), s3_endpoint_url=None, **SCENARIO)
    data = write_modeling(settings, RUN_DATE, PER_DAY)
    result = retrain(RUN_DATE, settings)
    return SimpleNamespace(settings=settings, data=data, result=result, root=root)


@pytest.fixture()
def local_copy(local_trained, tmp_path, monkeypatch):
    """A private copy of the trained local warehouse; CHURN_WAREHOUSE points at it."""
    root = tmp_path / "warehouse"
    shutil.copytree(local_trained.root, root)
    monkeypatch.setenv("CHURN_WAREHOUSE", str(root))
    monkeypatch.delenv("CHURN_S3_ENDPOINT_URL", raising=False)
    set_scenario_env(monkeypatch)
    settings = Settings(warehouse=str(root), s3_endpoint_url=None, **SCENARIO)
    recover(settings)  # a copy gets its own tables (else its writes would refuse: they would change the original)
    return SimpleNamespace(settings=settings, data=local_trained.data, result=local_trained.result, root=root)


@pytest.fixture()
def empty_local(tmp_path, monkeypatch):
    root = tmp_path / "empty"
    root.mkdir()  # exists, holds nothing (a warehouse that does not exist is another error)
    monkeypatch.setenv("CHURN_WAREHOUSE", str(root))
    monkeypatch.delenv("CHURN_S3_ENDPOINT_URL", raising=False)
    return Settings(warehouse=str(root), s3_endpoint_url=None)
