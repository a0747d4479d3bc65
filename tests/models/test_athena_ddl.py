"""The predictions table's Athena DDL parses and matches what scoring writes."""

from __future__ import annotations

import pyarrow as pa
import sqlglot
from sqlglot import exp

from churn.settings import SQL_DIR
from models.score import OUTPUT_SCHEMA

DDL = SQL_DIR / "athena" / "instances_w1_scored.sql"
ATHENA_TYPES = {pa.string(): "STRING", pa.date32(): "DATE", pa.float64(): "DOUBLE", pa.int32(): "INT"}


def _parsed() -> exp.Create:
    sql = DDL.read_text().replace("${database}", "churn").replace("${location}", "s3://bucket/wh/predictions/x")
    return sqlglot.parse_one(sql, read="athena")


def test_ddl_parses_as_an_external_partition_projected_parquet_table():
    create = _parsed()
    assert isinstance(create, exp.Create) and create.find(exp.ExternalProperty) is not None
    assert create.this.this.db == "churn" and create.this.this.name == "instances_w1_scored"
    props = {p.name: p.text("value") for p in create.find_all(exp.Property) if isinstance(p.this, exp.Literal)}
    assert props["projection.enabled"] == "true" and props["projection.dt.type"] == "date"
    assert props["projection.dt.format"] == "yyyy-MM-dd" and props["projection.dt.range"] == "NOW-3YEARS,NOW"
    assert props["storage.location.template"] == "s3://bucket/wh/predictions/x/dt=${dt}/"
    assert "PARQUET" in create.sql(dialect="athena").upper()


def test_ddl_columns_are_the_scoring_output_schema():
    schema = _parsed().this
    columns = [(c.name, c.args["kind"].this) for c in schema.expressions if isinstance(c, exp.ColumnDef)]
    expected = [(f.name, exp.DataType.build(ATHENA_TYPES[f.type], dialect="athena").this) for f in OUTPUT_SCHEMA]
    assert columns == expected
    partitioned = _parsed().find(exp.PartitionedByProperty)
    assert [c.name for c in partitioned.find_all(exp.ColumnDef)] == ["dt"]
