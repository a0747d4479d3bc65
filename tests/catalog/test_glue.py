"""`churn catalog apply` (Glue, or Athena DDL) against moto's real HTTP server on 127.0.0.1."""

from __future__ import annotations

import boto3
import pytest
import sqlglot
from typer.testing import CliRunner

from churn.cli import app
from churn.core import glue as catalog_glue
from churn.core.feature_config import load_feature_config
from churn.core.tables import ATHENA_DIR, TABLES, ddl_statement
from churn.tools.catalog import apply_ddl_athena

WAREHOUSE = "s3://churn-test/warehouse"


@pytest.fixture()
def settings(aws, settings_for):
    return settings_for(warehouse=WAREHOUSE, athena_database="churn_test", aws_endpoint_url=aws)


def glue(aws):
    return boto3.client("glue", region_name="us-east-1", endpoint_url=aws)


def test_apply_creates_database_and_every_table(aws, settings):
    result = catalog_glue.apply_tables(settings)
    assert result == {name: "created" for name in TABLES}
    client = glue(aws)
    assert client.get_database(Name="churn_test")["Database"]["Name"] == "churn_test"
    assert {t["Name"] for t in client.get_tables(DatabaseName="churn_test")["TableList"]} == set(TABLES)

    w1 = client.get_table(DatabaseName="churn_test", Name="instances_w1")["Table"]
    sd = w1["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == load_feature_config(settings).table_columns("instances_w1")
    assert [(k["Name"], k["Type"]) for k in w1["PartitionKeys"]] == [("dt", "string")]
    assert sd["Location"] == f"{WAREHOUSE}/features/instances_w1/"
    assert sd["SerdeInfo"]["SerializationLibrary"] == catalog_glue.PARQUET_SERDE
    assert sd["InputFormat"] == catalog_glue.PARQUET_INPUT and w1["TableType"] == "EXTERNAL_TABLE"
    params = w1["Parameters"]
    assert params["projection.enabled"] == "true" and params["projection.dt.type"] == "date"
    assert params["storage.location.template"] == f"{WAREHOUSE}/features/instances_w1/dt=${{dt}}/"
    evaluations = client.get_table(DatabaseName="churn_test", Name="evaluations")["Table"]
    assert evaluations.get("PartitionKeys", []) == []
    assert evaluations["StorageDescriptor"]["Location"] == f"{WAREHOUSE}/raw/evaluations/"


def test_apply_is_idempotent_and_updates_a_changed_definition(aws, settings, settings_for, tmp_path):
    catalog_glue.apply_tables(settings, ["instances_w1"])
    assert catalog_glue.apply_tables(settings, ["instances_w1"]) == {"instances_w1": "unchanged"}
    config = tmp_path / "features.yaml"
    text = (ATHENA_DIR.parent / "features" / "feature_config.yaml").read_text()
    config.write_text(text.replace("count_features:\n", "count_features:\n  epics_created: [epic_created]\n", 1))
    changed = settings_for(warehouse=WAREHOUSE, athena_database="churn_test", aws_endpoint_url=aws, feature_config=config)
    assert catalog_glue.apply_tables(changed, ["instances_w1"]) == {"instances_w1": "updated"}
    columns = glue(aws).get_table(DatabaseName="churn_test", Name="instances_w1")["Table"]["StorageDescriptor"]
    assert "epics_created" in [c["Name"] for c in columns["Columns"]]


def test_catalog_cli_applies_then_registers_days(aws, settings):
    runner = CliRunner(env={"CHURN_DEPLOYMENT": "aws"})
    result = runner.invoke(app, ["catalog", "apply", "--table", "instances_w1"])
    assert result.exit_code == 0, result.output
    assert "churn_test.instances_w1: created" in result.output
    result = runner.invoke(app, ["catalog", "register", "--start", "2024-03-01", "--end", "2024-03-02",
                                 "--table", "instances_w1"])
    assert result.exit_code == 0, result.output
    assert '"added": 2' in result.output
    parts = glue(aws).get_partitions(DatabaseName="churn_test", TableName="instances_w1")["Partitions"]
    assert sorted(p["Values"][0] for p in parts) == ["2024-03-01", "2024-03-02"]
    result = runner.invoke(app, ["catalog", "register", "--ds", "03/01/2024"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output
    local = CliRunner(env={"CHURN_DEPLOYMENT": "local"}).invoke(app, ["catalog", "register", "--ds", "2024-03-01"])
    assert local.exit_code == 0 and "skipped: deployment=local" in local.output


def test_apply_via_athena_sends_each_tables_ddl_through_the_hook(aws, settings_for):
    settings = settings_for(warehouse=WAREHOUSE, athena_database="churn_test", athena_output="s3://churn-test/athena/",
                            aws_endpoint_url=aws)
    ids = apply_ddl_athena(settings, sleep_time=0)
    assert list(ids) == ["<database>", *TABLES]
    athena = boto3.client("athena", region_name="us-east-1", endpoint_url=aws)
    for name, query_id in ids.items():
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        assert execution["Status"]["State"] == "SUCCEEDED"
        assert execution["ResultConfiguration"]["OutputLocation"].startswith("s3://churn-test/athena/")
        if name == "<database>":
            assert execution["Query"] == "CREATE DATABASE IF NOT EXISTS `churn_test`"
            continue
        assert execution["Query"] == ddl_statement(TABLES[name], settings)
        assert execution["QueryExecutionContext"]["Database"] == "churn_test"
        assert sqlglot.parse_one(execution["Query"], read="athena").this.this.name == name


def test_failed_athena_query_raises_with_the_reason(settings):
    class FailingHook:
        SUCCESS_STATES = ("SUCCEEDED",)

        def run_query(self, **kwargs):
            return "q-1"

        def poll_query_status(self, query_id, sleep_time=None):
            return "FAILED"

        def get_state_change_reason(self, query_id):
            return "line 1:8: mismatched input"

    with pytest.raises(catalog_glue.CatalogError, match="mismatched input"):
        apply_ddl_athena(settings, ["events"], hook=FailingHook())
