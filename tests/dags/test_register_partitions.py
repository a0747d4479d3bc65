"""The register_partitions job against moto's Glue on 127.0.0.1: tables at deploy time, partitions daily."""

from __future__ import annotations

from datetime import date

import pytest

from churn import jobs
from churn.core.glue import CatalogError, apply_tables
from churn.core.settings import Settings
from churn.core.tables import FEATURE_TABLES, MONITORING_TABLES

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


def test_a_local_deployment_skips_registration():
    with pytest.raises(jobs.Skipped, match="deployment=local"):
        jobs.register_partitions(Settings(deployment="local", _env_file=None), FEATURE_TABLES, [date(2026, 3, 1)])


def test_partitions_are_added_to_the_tables_created_at_deploy_time(glue_endpoint):
    import boto3

    settings = Settings(deployment="aws", warehouse="s3://churn-dag-test/wh", athena_database="churn_dags",
                        aws_endpoint_url=glue_endpoint, _env_file=None)
    days = [date(2026, 3, 1), date(2026, 3, 2)]
    with pytest.raises(CatalogError, match="churn catalog apply"):  # daily runs never create tables
        jobs.register_partitions(settings, FEATURE_TABLES, days)
    assert set(apply_tables(settings).values()) == {"created"}
    assert set(apply_tables(settings).values()) == {"unchanged"}

    glue = boto3.client("glue", region_name="us-east-1", endpoint_url=glue_endpoint)
    versions = {t: len(glue.get_table_versions(DatabaseName="churn_dags", TableName=t)["TableVersions"])
                for t in FEATURE_TABLES}
    summary = jobs.register_partitions(settings, FEATURE_TABLES, days)
    assert (summary.added, summary.existed) == (4, 0)
    assert jobs.register_partitions(settings, FEATURE_TABLES, days[1:]).existed == 2  # idempotent
    for table in FEATURE_TABLES:
        values = {tuple(p["Values"]) for p in glue.get_partitions(DatabaseName="churn_dags", TableName=table)["Partitions"]}
        assert values == {("2026-03-01",), ("2026-03-02",)}
        # the daily job neither read nor rewrote the table definition
        assert len(glue.get_table_versions(DatabaseName="churn_dags", TableName=table)["TableVersions"]) == versions[table]
    assert jobs.register_partitions(settings, ["instances_w1_scored"], days[:1]).added == 1
    jobs.register_partitions(settings, MONITORING_TABLES, days[1:])
    for table in MONITORING_TABLES:
        found = glue.get_table(DatabaseName="churn_dags", Name=table)["Table"]
        assert found["StorageDescriptor"]["Location"] == f"s3://churn-dag-test/wh/monitoring/{table}/"
        parts = glue.get_partitions(DatabaseName="churn_dags", TableName=table)["Partitions"]
        assert [p["Values"] for p in parts] == [["2026-03-02"]]
        assert parts[0]["StorageDescriptor"]["Location"] == f"s3://churn-dag-test/wh/monitoring/{table}/dt=2026-03-02/"
