"""`churn catalog apply` (Glue, or Athena DDL) against moto's real HTTP server on 127.0.0.1."""

from __future__ import annotations

from datetime import date

import boto3
import pytest
import sqlglot
from typer.testing import CliRunner

from churn.cli import app
from churn.core import glue as catalog_glue
from churn.core.feature_config import load_feature_config
from churn.core.tables import ATHENA_DIR, TABLES, ddl_statement
from churn.core.warehouse import list_partitions
from churn.ops.catalog import apply_catalog, apply_ddl_athena

from .conftest import publish_features

WAREHOUSE = "s3://churn-test/warehouse"


@pytest.fixture()
def settings(aws, settings_for):
    boto3.client("s3", region_name="us-east-1", endpoint_url=aws).create_bucket(Bucket="churn-test")
    return settings_for(warehouse=WAREHOUSE, athena_database="churn_test", aws_endpoint_url=aws, s3_endpoint_url=aws,
                        table_catalog="glue")


def glue(aws):
    return boto3.client("glue", region_name="us-east-1", endpoint_url=aws)


def test_apply_creates_database_and_every_table(aws, settings):
    result = apply_catalog(settings, list(TABLES))
    assert result == {name: "created" for name in TABLES}
    client = glue(aws)
    assert client.get_database(Name="churn_test")["Database"]["Name"] == "churn_test"
    assert {t["Name"] for t in client.get_tables(DatabaseName="churn_test")["TableList"]} == set(TABLES)

    events = client.get_table(DatabaseName="churn_test", Name="events")["Table"]  # raw: Hive-style, projected
    sd = events["StorageDescriptor"]
    assert [(k["Name"], k["Type"]) for k in events["PartitionKeys"]] == [("dt", "string")]
    assert sd["Location"] == f"{WAREHOUSE}/raw/events/"
    assert sd["SerdeInfo"]["SerializationLibrary"] == catalog_glue.PARQUET_SERDE
    assert sd["InputFormat"] == catalog_glue.PARQUET_INPUT and events["TableType"] == "EXTERNAL_TABLE"
    params = events["Parameters"]
    assert params["projection.enabled"] == "true" and params["projection.dt.type"] == "date"
    assert params["storage.location.template"] == f"{WAREHOUSE}/raw/events/dt=${{dt}}/"
    evaluations = client.get_table(DatabaseName="churn_test", Name="evaluations")["Table"]
    assert evaluations.get("PartitionKeys", []) == []
    assert evaluations["StorageDescriptor"]["Location"] == f"{WAREHOUSE}/raw/evaluations/"

    w1 = client.get_table(DatabaseName="churn_test", Name="instances_w1")["Table"]  # ours: Iceberg, read natively
    assert w1["Parameters"]["table_type"].upper() == "ICEBERG"
    assert w1["Parameters"]["metadata_location"].startswith(f"{WAREHOUSE}/features/instances_w1/metadata/")
    columns = [c["Name"] for c in w1["StorageDescriptor"]["Columns"]]
    assert columns == [n for n, _ in load_feature_config(settings).table_columns("instances_w1")] + ["dt"]


def test_apply_is_idempotent_and_evolves_a_changed_table(aws, settings, settings_for, tmp_path):
    apply_catalog(settings, ["events", "instances_w1"])
    assert apply_catalog(settings, ["events", "instances_w1"]) == {"events": "unchanged", "instances_w1": "unchanged"}
    config = tmp_path / "features.yaml"
    text = (ATHENA_DIR.parent / "features" / "feature_config.yaml").read_text()
    config.write_text(text.replace("count_features:\n", "count_features:\n  epics_created: [epic_created]\n", 1))
    changed = settings.model_copy(update={"feature_config": str(config)})
    assert apply_catalog(changed, ["instances_w1"]) == {"instances_w1": "evolved"}
    columns = glue(aws).get_table(DatabaseName="churn_test", Name="instances_w1")["Table"]["StorageDescriptor"]
    assert "epics_created" in [c["Name"] for c in columns["Columns"]]
    with pytest.raises(catalog_glue.CatalogError, match="instances_w1 is an Iceberg table"):
        catalog_glue.apply_tables(settings, ["instances_w1"])


def test_writes_commit_to_glue_and_athena_sees_whole_snapshots(aws, settings):
    """No partition registration: every publish is a Glue commit of the table's metadata pointer."""
    publish_features(settings, "instances_w1", {date(2024, 3, 1): 3})
    first = glue(aws).get_table(DatabaseName="churn_test", Name="instances_w1")["Table"]["Parameters"]
    publish_features(settings, "instances_w1", {date(2024, 3, 2): 4})
    second = glue(aws).get_table(DatabaseName="churn_test", Name="instances_w1")["Table"]["Parameters"]
    assert second["metadata_location"] != first["metadata_location"]
    assert second["previous_metadata_location"] == first["metadata_location"]
    assert list_partitions("instances_w1", settings) == [date(2024, 3, 1), date(2024, 3, 2)]


def test_catalog_cli_applies(aws, settings):
    result = CliRunner().invoke(app, ["catalog", "apply", "--table", "instances_w1", "--table", "events"])
    assert result.exit_code == 0, result.output
    assert "churn_test.instances_w1: created" in result.output and "churn_test.events: created" in result.output


def test_apply_via_athena_sends_each_tables_ddl(aws, settings_for):
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
    class FailingAthena:  # moto's Athena runs no SQL and never fails a query: a double of the AWS client
        def start_query_execution(self, QueryString, **kwargs):  # noqa: N803 (boto3's spelling)
            return {"QueryExecutionId": "q-db" if QueryString.startswith("CREATE DATABASE") else "q-events"}

        def get_query_execution(self, QueryExecutionId):  # noqa: N803
            if QueryExecutionId == "q-db":
                return {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}}
            return {"QueryExecution": {"Status": {"State": "FAILED", "StateChangeReason": "line 1:8: mismatched input"}}}

    with pytest.raises(catalog_glue.CatalogError, match=r"for events ended FAILED: line 1:8: mismatched input \(query q-events\)"):
        apply_ddl_athena(settings, ["events"], client=FailingAthena())
