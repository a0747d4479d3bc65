"""Shared fixtures: a fresh warehouse per test, one local Spark session per test session, and a moto server on
127.0.0.1 (real HTTP: S3, Glue, Athena, EMR Serverless) with fresh state per test."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import pytest

from churn.core.settings import PROJECT_ROOT, Settings

# Airflow reads its configuration once, at first import: every test process (each xdist worker) points it at
# a temporary AIRFLOW_HOME with a SQLite DB (dag.test() runs) before any test module can import it. The
# end-to-end test starts a real Airflow on its own embedded PostgreSQL (churn.dev.airflow_local clears these).
AIRFLOW_TEST_HOME = Path(tempfile.mkdtemp(prefix="churn-airflow-test-"))
os.environ.update({
    "AIRFLOW_HOME": str(AIRFLOW_TEST_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_TEST_HOME / 'airflow.db'}",
    "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
})


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    shutil.rmtree(AIRFLOW_TEST_HOME, ignore_errors=True)

CHURN_TEST_ENV = ("CHURN_RAW_EVALUATIONS", "CHURN_RAW_EVENTS", "CHURN_FEATURE_CONFIG", "CHURN_S3_ENDPOINT_URL",
                  "CHURN_FEATURE_ENGINE", "CHURN_DEPLOYMENT", "CHURN_ALERT_CALLBACK")
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


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


# Session and module fixtures that take 10-60 s to build: the tests that use one run on one worker, which builds it
# once (instead of every worker that gets one of them).
SHARED_ONCE = ("trained_history", "s3_trained", "local_trained", "deployment", "trained")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist turns the xdist_group marks into its scheduling units
def pytest_collection_modifyitems(session, config, items):  # noqa: ARG001
    """The slow end-to-end tests first: with `make test`'s two workers (pytest-xdist, --dist loadgroup) they then
    run beside the many short ones instead of after them, so the suite's wall time is about its work divided by
    two; and the users of an expensive session fixture share one worker."""
    for item in items:
        for name in SHARED_ONCE:
            if name in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(name))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
