"""The checked-in Athena DDL: generated from the config, parseable, placeholders done right."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from churn import catalog
from churn.feature_config import load_feature_config
from churn.settings import DEFAULT_FEATURE_CONFIG, Settings

ATHENA_FILES = sorted(catalog.ATHENA_DIR.glob("*.sql"))


def default_settings() -> Settings:
    return Settings(feature_config=str(DEFAULT_FEATURE_CONFIG), warehouse="s3://bucket/warehouse")


@pytest.mark.parametrize("table", catalog.GENERATED_TABLES)
def test_checked_in_ddl_is_what_the_generator_produces(table):
    path = catalog.ddl_path(table)
    assert path.exists(), f"{path} is missing: run `churn catalog ddl --write`"
    assert path.read_text() == catalog.render_ddl(table, default_settings()), (
        f"{path} is stale (feature config or raw contract changed): regenerate with `churn catalog ddl --write`"
    )


def test_every_known_table_has_a_ddl_file_and_every_file_a_location():
    files = {p.stem for p in ATHENA_FILES}
    assert set(catalog.GENERATED_TABLES) <= files
    assert files <= set(catalog.TABLE_LOCATIONS), "a sql/athena file has no entry in TABLE_LOCATIONS"


def test_a_config_change_makes_the_check_fail(tmp_path):
    config = tmp_path / "features.yaml"
    text = DEFAULT_FEATURE_CONFIG.read_text().replace(
        "count_features:\n", "count_features:\n  epics_created: [epic_created]\n", 1
    )
    config.write_text(text)
    changed = catalog.render_ddl("instances_w1", Settings(feature_config=str(config)))
    assert "`epics_created`" in changed
    assert changed != catalog.ddl_path("instances_w1").read_text()


@pytest.mark.parametrize("path", ATHENA_FILES, ids=lambda p: p.name)
def test_every_athena_file_parses_after_substitution(path: Path):
    template = path.read_text()
    assert "${database}" in template and "${location}" in template, "use the ${database}/${location} placeholders"
    filled = catalog.fill(template, "churn", "s3://bucket/warehouse/some/table")
    assert "${database}" not in filled and "${location}" not in filled
    statements = [s for s in sqlglot.parse(filled, read="athena") if s is not None]
    assert len(statements) == 1
    create = statements[0]
    assert isinstance(create, exp.Create) and create.args.get("exists"), "CREATE EXTERNAL TABLE IF NOT EXISTS"
    assert create.find(exp.ExternalProperty) is not None
    assert create.this.this.db == "churn" and create.this.this.name == path.stem
    spec = catalog.parse_ddl(filled)
    assert spec.file_format == "PARQUET"
    assert spec.location.startswith("s3://bucket/warehouse/some/table")
    assert spec.properties.get("parquet.compression") == "SNAPPY"
    if spec.partition_keys:
        assert spec.partition_keys == [("dt", "string")]
        assert spec.properties["projection.enabled"] == "true"
        assert spec.properties["projection.dt.type"] == "date"
        assert spec.properties["projection.dt.format"] == "yyyy-MM-dd"
        assert spec.properties["projection.dt.range"] == "NOW-3YEARS,NOW"
        assert spec.properties["projection.dt.interval"] == "1"
        assert spec.properties["projection.dt.interval.unit"] == "DAYS"
        # ${dt} is Athena's projection placeholder: it must survive our substitution
        assert spec.properties["storage.location.template"].startswith("s3://bucket/warehouse/some/table/dt=${dt}")
    assert not any(w in filled.upper() for w in ("MSCK", "REPAIR TABLE"))


def test_fill_leaves_dt_and_unknown_placeholders_alone():
    text = "`${database}` '${location}/' '${location}/dt=${dt}/' ${other}"
    assert catalog.fill(text, "db", "s3://b/t/") == "`db` 's3://b/t/' 's3://b/t/dt=${dt}/' ${other}"


def test_feature_table_columns_follow_the_feature_config():
    settings = default_settings()
    for table in ("instances_w1", "instances_modeling"):
        spec = catalog.table_spec(table, settings)
        assert spec.columns == load_feature_config(settings).table_columns(table)
        assert spec.location == f"s3://bucket/warehouse/features/{table}/"
    assert ("retained", "int") in catalog.table_spec("instances_modeling", settings).columns


def test_raw_tables():
    settings = default_settings()
    events = catalog.table_spec("events", settings)
    assert events.partition_keys == [("dt", "string")]
    assert ("event_time", "timestamp") in events.columns and ("received_at", "timestamp") in events.columns
    assert events.location == "s3://bucket/warehouse/raw/events/"
    evaluations = catalog.table_spec("evaluations", settings)
    assert evaluations.partition_keys == [] and "projection.enabled" not in evaluations.properties
    assert evaluations.columns == [("instance_id", "string"), ("eval_start_date", "date"), ("converted_date", "date")]


def test_statement_is_one_statement_without_comments():
    statement = catalog.ddl_statement("instances_w1", default_settings())
    assert statement.startswith("CREATE EXTERNAL TABLE IF NOT EXISTS `churn`.`instances_w1`")
    assert "--" not in statement and not statement.endswith(";")


def test_ddl_cli_prints_and_check_unknown_table():
    from typer.testing import CliRunner

    runner = CliRunner()
    result = runner.invoke(catalog.app, ["ddl", "--table", "events", "--template"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == catalog.ddl_path("events").read_text().strip()
    result = runner.invoke(catalog.app, ["ddl", "--table", "nope"])
    assert result.exit_code == 2 and "unknown table" in result.output
