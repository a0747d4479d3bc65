"""The register_partitions tasks' callable against moto's Glue on 127.0.0.1 (deployment=aws only)."""

from __future__ import annotations

from datetime import date

import pytest

from churn import orchestration as orch
from churn.settings import get_settings, reset_settings_cache

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_MAX_ATTEMPTS": "1",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
}  # any client not pointed at moto fails, never reaches AWS


@pytest.fixture()
def glue_endpoint(monkeypatch):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    yield f"http://{host}:{port}"
    server.stop()


def test_partitions_are_registered_only_for_aws(glue_endpoint, monkeypatch):
    import boto3

    monkeypatch.setenv("CHURN_DEPLOYMENT", "local")
    reset_settings_cache()
    assert not orch.catalog_enabled()

    for key, value in {
        "DEPLOYMENT": "aws",
        "WAREHOUSE": "s3://churn-dag-test/wh",
        "ATHENA_DATABASE": "churn_dags",
        "AWS_ENDPOINT_URL": glue_endpoint,
    }.items():
        monkeypatch.setenv(f"CHURN_{key}", value)
    reset_settings_cache()
    try:
        assert orch.catalog_enabled()
        days = [date(2026, 3, 1), date(2026, 3, 2)]
        result = orch.register_partitions(orch.FEATURE_TABLES, days, get_settings())
        assert result == {"tables": list(orch.FEATURE_TABLES), "partitions": 2}
        glue = boto3.client("glue", region_name="us-east-1", endpoint_url=glue_endpoint)
        for table in orch.FEATURE_TABLES:
            values = {
                tuple(p["Values"])
                for p in glue.get_partitions(DatabaseName="churn_dags", TableName=table)["Partitions"]
            }
            assert values == {("2026-03-01",), ("2026-03-02",)}
        # what churn_scoring's register_partitions task registers
        assert orch.register_partitions(["instances_w1_scored"], days[:1], get_settings())["partitions"] == 1
        scored = glue.get_partitions(DatabaseName="churn_dags", TableName="instances_w1_scored")["Partitions"]
        assert [p["Values"] for p in scored] == [["2026-03-01"]]
        # what churn_monitoring's register_partitions task registers
        assert orch.register_partitions(["model_performance", "feature_drift"], days[1:], get_settings())["partitions"] == 1
        for table in ("model_performance", "feature_drift"):
            found = glue.get_table(DatabaseName="churn_dags", Name=table)["Table"]
            assert found["StorageDescriptor"]["Location"] == f"s3://churn-dag-test/wh/monitoring/{table}/"
            parts = glue.get_partitions(DatabaseName="churn_dags", TableName=table)["Partitions"]
            assert [p["Values"] for p in parts] == [["2026-03-02"]]
    finally:
        reset_settings_cache()
