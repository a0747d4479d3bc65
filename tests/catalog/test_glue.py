"""Glue registration and Athena DDL submission against moto's real HTTP server on 127.0.0.1."""

from __future__ import annotations

from datetime import date

import boto3
import pytest
import sqlglot
from typer.testing import CliRunner

from churn import catalog
from churn.feature_config import load_feature_config

WAREHOUSE = "s3://churn-test/warehouse"


@pytest.fixture()
def settings(aws, settings_for):
    return settings_for(warehouse=WAREHOUSE, athena_database="churn_test", aws_endpoint_url=aws)


def glue(aws):
    return boto3.client("glue", region_name="us-east-1", endpoint_url=aws)


def test_register_creates_database_tables_and_partition(aws, settings):
    result = catalog.register_glue(settings, dt=date(2024, 3, 1))
    tables = catalog.athena_tables()
    assert set(result) == set(tables)
    assert all(r["table"] == "created" for r in result.values())
    client = glue(aws)
    assert client.get_database(Name="churn_test")["Database"]["Name"] == "churn_test"
    names = {t["Name"] for t in client.get_tables(DatabaseName="churn_test")["TableList"]}
    assert names == set(tables)

    w1 = client.get_table(DatabaseName="churn_test", Name="instances_w1")["Table"]
    sd = w1["StorageDescriptor"]
    expected = load_feature_config(settings).table_columns("instances_w1")
    assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == expected
    assert [(k["Name"], k["Type"]) for k in w1["PartitionKeys"]] == [("dt", "string")]
    assert sd["Location"] == f"{WAREHOUSE}/features/instances_w1/"
    assert sd["SerdeInfo"]["SerializationLibrary"] == catalog.PARQUET_SERDE
    assert sd["InputFormat"] == catalog.PARQUET_INPUT
    assert w1["TableType"] == "EXTERNAL_TABLE"
    params = w1["Parameters"]
    assert params["projection.enabled"] == "true" and params["projection.dt.type"] == "date"
    assert params["storage.location.template"] == f"{WAREHOUSE}/features/instances_w1/dt=${{dt}}/"

    part = client.get_partition(DatabaseName="churn_test", TableName="instances_w1", PartitionValues=["2024-03-01"])
    assert part["Partition"]["StorageDescriptor"]["Location"] == f"{WAREHOUSE}/features/instances_w1/dt=2024-03-01/"
    assert result["instances_w1"]["partition"] == "added"
    assert result["events"]["partition"] == "added"

    evaluations = client.get_table(DatabaseName="churn_test", Name="evaluations")["Table"]
    assert evaluations.get("PartitionKeys", []) == []
    assert evaluations["StorageDescriptor"]["Location"] == f"{WAREHOUSE}/raw/evaluations/"
    assert result["evaluations"]["partition"] == "-"
    assert client.get_partitions(DatabaseName="churn_test", TableName="evaluations")["Partitions"] == []


def test_register_is_idempotent_and_adds_new_days(aws, settings):
    catalog.register_glue(settings, dt="2024-03-01")
    again = catalog.register_glue(settings, dt="2024-03-01")
    assert all(r == {"table": "unchanged", "partition": "exists"} for t, r in again.items() if t != "evaluations")
    assert again["evaluations"] == {"table": "unchanged", "partition": "-"}
    catalog.register_glue(settings, tables=["instances_w1"], dt="2024-03-02")
    client = glue(aws)
    values = sorted(
        p["Values"][0] for p in client.get_partitions(DatabaseName="churn_test", TableName="instances_w1")["Partitions"]
    )
    assert values == ["2024-03-01", "2024-03-02"]
    assert len(client.get_partitions(DatabaseName="churn_test", TableName="events")["Partitions"]) == 1


def test_a_changed_definition_updates_the_table(aws, settings, settings_for, tmp_path, monkeypatch):
    catalog.register_glue(settings, tables=["instances_w1"])
    config = tmp_path / "features.yaml"
    text = (catalog.ATHENA_DIR.parent / "features" / "feature_config.yaml").read_text()
    config.write_text(text.replace("count_features:\n", "count_features:\n  epics_created: [epic_created]\n", 1))
    changed = settings_for(
        warehouse=WAREHOUSE, athena_database="churn_test", aws_endpoint_url=aws, feature_config=config
    )
    # the DDL files are the source of truth: regenerate them in a private copy of sql/athena/
    athena_dir = tmp_path / "athena"
    athena_dir.mkdir()
    monkeypatch.setattr(catalog, "ATHENA_DIR", athena_dir)
    catalog.write_ddl(changed, ["instances_w1"])
    result = catalog.register_glue(changed, tables=["instances_w1"])
    assert result["instances_w1"]["table"] == "updated"
    columns = glue(aws).get_table(DatabaseName="churn_test", Name="instances_w1")["Table"]["StorageDescriptor"]
    assert "epics_created" in [c["Name"] for c in columns["Columns"]]


def test_register_cli(aws, settings):
    runner = CliRunner()
    result = runner.invoke(catalog.app, ["register", "--ds", "2024-03-01", "--table", "instances_w1"])
    assert result.exit_code == 0, result.output
    assert "churn_test.instances_w1: table created, partition added" in result.output
    result = runner.invoke(catalog.app, ["register", "--ds", "2024-03-01", "--table", "instances_w1"])
    assert "table unchanged, partition exists" in result.output
    result = runner.invoke(catalog.app, ["register", "--ds", "03/01/2024"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output


def test_apply_ddl_sends_the_parsed_ddl_through_the_athena_hook(aws, settings_for):
    settings = settings_for(
        warehouse=WAREHOUSE, athena_database="churn_test", athena_output="s3://churn-test/athena/", aws_endpoint_url=aws
    )
    ids = catalog.apply_ddl_athena(settings, sleep_time=0)
    assert list(ids) == ["<database>", *catalog.athena_tables()]
    athena = boto3.client("athena", region_name="us-east-1", endpoint_url=aws)
    for name, query_id in ids.items():
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        assert execution["Status"]["State"] == "SUCCEEDED"
        assert execution["ResultConfiguration"]["OutputLocation"].startswith("s3://churn-test/athena/")
        if name == "<database>":
            assert execution["Query"] == "CREATE DATABASE IF NOT EXISTS `churn_test`"
            continue
        assert execution["Query"] == catalog.ddl_statement(name, settings)
        assert execution["QueryExecutionContext"]["Database"] == "churn_test"
        parsed = sqlglot.parse_one(execution["Query"], read="athena")
        assert parsed.this.this.name == name


def test_failed_athena_query_raises_with_the_reason(settings):
    class FailingHook:
        SUCCESS_STATES = ("SUCCEEDED",)

        def run_query(self, **kwargs):
            return "q-1"

        def poll_query_status(self, query_id, sleep_time=None):
            return "FAILED"

        def get_state_change_reason(self, query_id):
            return "line 1:8: mismatched input"

    with pytest.raises(catalog.CatalogError, match="mismatched input"):
        catalog.apply_ddl_athena(settings, tables=["events"], hook=FailingHook())
