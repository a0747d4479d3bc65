"""The Athena DDL: generated from the table registry for every table, parseable, placeholders done right."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp
from typer.testing import CliRunner

from churn.cli import app
from churn.core.feature_config import load_feature_config
from churn.core.settings import DEFAULT_FEATURE_CONFIG, Settings
from churn.core.tables import ATHENA_DIR, TABLES, ddl_statement, fill, render_ddl, table
from churn.ops.catalog import stale_ddl


def default_settings() -> Settings:
    return Settings(feature_config=str(DEFAULT_FEATURE_CONFIG), warehouse="s3://bucket/warehouse", _env_file=None)


def parsed(t) -> exp.Create:
    return sqlglot.parse_one(fill(t.ddl_path.read_text(), "churn", "s3://bucket/warehouse/some/table"), read="athena")


def columns_of(create: exp.Create) -> list[tuple[str, str]]:
    return [(c.name, c.args["kind"].sql(dialect="hive").lower()) for c in create.this.expressions
            if isinstance(c, exp.ColumnDef)]


@pytest.mark.parametrize("name", list(TABLES))
def test_checked_in_ddl_is_what_the_registry_generates(name):
    t = TABLES[name]
    assert t.ddl_path.exists(), f"{t.ddl_path} is missing: run `churn catalog ddl --write`"
    assert t.ddl_path.read_text() == render_ddl(t, default_settings()), (
        f"{t.ddl_path} is stale: regenerate with `churn catalog ddl --write`"
    )


def test_sql_athena_holds_exactly_the_registry_tables():
    assert {p.stem for p in ATHENA_DIR.glob("*.sql")} == set(TABLES)
    assert stale_ddl(default_settings()) == []


def test_a_config_change_makes_the_check_fail(tmp_path):
    config = tmp_path / "features.yaml"
    config.write_text(DEFAULT_FEATURE_CONFIG.read_text().replace(
        "count_features:\n", "count_features:\n  epics_created: [epic_created]\n", 1))
    changed = Settings(feature_config=str(config), _env_file=None)
    assert "`epics_created`" in render_ddl(table("instances_w1"), changed)
    assert any("instances_w1.sql differs" in p for p in stale_ddl(changed))


@pytest.mark.parametrize("name", [n for n, t in TABLES.items() if not t.published])
def test_raw_table_ddl_parses_with_the_registry_columns_and_projection(name):
    t = TABLES[name]
    create = parsed(t)
    assert isinstance(create, exp.Create) and create.args.get("exists"), "CREATE EXTERNAL TABLE IF NOT EXISTS"
    assert create.find(exp.ExternalProperty) is not None
    assert create.this.this.db == "churn" and create.this.this.name == name
    assert columns_of(create) == t.columns(default_settings())
    props = {p.name: p.text("value") for p in create.find_all(exp.Property) if isinstance(p.this, exp.Literal)}
    assert props["parquet.compression"] == "SNAPPY"
    partitioned = create.find(exp.PartitionedByProperty)
    if t.partitioned:
        assert [c.name for c in partitioned.find_all(exp.ColumnDef)] == ["dt"]
        assert props["projection.enabled"] == "true" and props["projection.dt.type"] == "date"
        assert props["projection.dt.format"] == "yyyy-MM-dd" and props["projection.dt.range"] == "NOW-3YEARS,NOW"
        # ${dt} is Athena's projection placeholder: it must survive our substitution
        assert props["storage.location.template"] == "s3://bucket/warehouse/some/table/dt=${dt}/"
    else:
        assert partitioned is None and "projection.enabled" not in props
    assert "MSCK" not in t.ddl_path.read_text().upper()


@pytest.mark.parametrize("name", [n for n, t in TABLES.items() if t.published])
def test_our_tables_are_iceberg_tables_with_the_catalog_schema(name):
    """The Athena DDL and the schema pyiceberg creates the table with are the same columns and types."""
    from churn.core.warehouse import iceberg_schema

    t = TABLES[name]
    create = parsed(t)
    assert isinstance(create, exp.Create) and create.args.get("exists") and create.find(exp.ExternalProperty) is None
    assert create.this.this.db == "churn" and create.this.this.name == name
    props = {p.name: p.text("value") for p in create.find_all(exp.Property) if isinstance(p.this, exp.Literal)}
    assert props["table_type"] == "ICEBERG" and "projection.enabled" not in props
    assert [i.name for i in create.find(exp.PartitionedByProperty).find_all(exp.Identifier)] == ["dt"]
    iceberg = {"string": "string", "date": "date", "int": "int", "long": "bigint", "double": "double",
               "timestamptz": "timestamp", "boolean": "boolean"}
    expected = [(f.name, iceberg[str(f.field_type)]) for f in iceberg_schema(t, default_settings()).fields]
    assert columns_of(create) == expected == [*t.columns(default_settings()), ("dt", "date")]


def test_writers_use_the_registry_schemas():
    from churn.models import monitor, score

    assert score.OUTPUT_SCHEMA.equals(TABLES["instances_w1_scored"].arrow_schema(default_settings()))
    assert monitor.PERFORMANCE_SCHEMA.equals(TABLES["model_performance"].arrow_schema(default_settings()))
    assert monitor.DRIFT_SCHEMA.equals(TABLES["feature_drift"].arrow_schema(default_settings()))


def test_fill_leaves_dt_and_unknown_placeholders_alone():
    text = "`${database}` '${location}/' '${location}/dt=${dt}/' ${other}"
    assert fill(text, "db", "s3://b/t/") == "`db` 's3://b/t/' 's3://b/t/dt=${dt}/' ${other}"


def test_feature_table_columns_follow_the_feature_config():
    settings = default_settings()
    for name in ("instances_w1", "instances_modeling"):
        assert TABLES[name].columns(settings) == load_feature_config(settings).table_columns(name)
        assert TABLES[name].location(settings) == f"s3://bucket/warehouse/features/{name}"
    assert ("retained", "int") in TABLES["instances_modeling"].columns(settings)


def test_raw_tables_and_their_location_settings():
    settings = default_settings()
    assert ("received_at", "timestamp") in TABLES["events"].columns(settings)
    assert TABLES["evaluations"].columns(settings) == [("instance_id", "string"), ("eval_start_date", "date"),
                                                        ("converted_date", "date")]
    moved = Settings(warehouse="s3://b/w", raw_events="s3://other/events/", _env_file=None)
    assert TABLES["events"].location(moved) == "s3://other/events"
    assert TABLES["evaluations"].location(moved) == "s3://b/w/raw/evaluations"


def test_statement_is_one_statement_without_comments():
    statement = ddl_statement(table("events"), default_settings())
    assert statement.startswith("CREATE EXTERNAL TABLE IF NOT EXISTS `churn`.`events`")
    assert ddl_statement(table("instances_w1"), default_settings()).startswith("CREATE TABLE IF NOT EXISTS `churn`.")
    assert "--" not in statement and not statement.endswith(";")


def test_ddl_cli_prints_checks_and_rejects_unknown_tables(monkeypatch):
    monkeypatch.delenv("CHURN_FEATURE_CONFIG", raising=False)
    runner = CliRunner()
    result = runner.invoke(app, ["catalog", "ddl", "--table", "events", "--template"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == table("events").ddl_path.read_text().strip()
    assert runner.invoke(app, ["catalog", "ddl", "--check"]).exit_code == 0
    result = runner.invoke(app, ["catalog", "ddl", "--table", "nope"])
    assert result.exit_code == 2 and "unknown table" in result.output
