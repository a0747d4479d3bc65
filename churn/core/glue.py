"""The Glue Data Catalog (Athena's metastore) through boto3, with table definitions from the table registry.

:func:`apply_tables` runs at deploy time (``churn catalog apply``): it creates the database and the raw
tables (Hive-style Parquet written by producers, partition projection on ``dt``), and updates a table
whose definition changed. Idempotent. The tables this system writes are Iceberg tables, created and
committed through the Iceberg catalog (``churn.core.warehouse``; with ``CHURN_TABLE_CATALOG=glue`` that
is this same Glue database), so no daily partition registration exists and ``MSCK REPAIR`` is never run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from churn.core.settings import Settings
from churn.core.tables import PARTITION_KEY, TABLES, Table, table_properties

log = logging.getLogger(__name__)

PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"


class CatalogError(RuntimeError):
    """A catalog call failed; the message says which table, which partition and what to do."""


def aws_client(service: str, settings: Settings):
    """A boto3 client of an AWS API besides S3 (``glue``, ``athena``, ``emr-serverless``): the worker's credential
    chain, region ``aws_region``, endpoint ``aws_endpoint_url`` (moto in tests). Not ``s3_endpoint_url``: an
    S3-only server (MinIO) has none of these APIs."""
    import boto3

    return boto3.client(service, region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url or None)


def _storage_descriptor(columns: list[tuple[str, str]], location: str) -> dict:
    return {
        "Columns": [{"Name": n, "Type": k} for n, k in columns],
        "Location": location,
        "InputFormat": PARQUET_INPUT,
        "OutputFormat": PARQUET_OUTPUT,
        "Compressed": False,
        "SerdeInfo": {"SerializationLibrary": PARQUET_SERDE, "Parameters": {"serialization.format": "1"}},
    }


def table_input(t: Table, settings: Settings) -> dict:
    """The Glue ``TableInput`` of a table: the same columns, location and properties as its Athena DDL."""
    root = t.location(settings)
    properties = {k: v.replace("${location}", root) for k, v in table_properties(t).items()}
    return {
        "Name": t.name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"EXTERNAL": "TRUE", "classification": "parquet", **properties},
        "StorageDescriptor": _storage_descriptor(t.columns(settings), root + "/"),
        "PartitionKeys": [{"Name": PARTITION_KEY, "Type": "string"}] if t.partitioned else [],
    }


def matches_ddl(existing: dict, t: Table, settings: Settings) -> bool:
    """Whether a Glue table definition is the one the table registry generates (columns, location, format …)."""
    return _comparable(existing) == _comparable(table_input(t, settings))


def _comparable(definition: dict) -> tuple:
    sd = definition.get("StorageDescriptor", {})
    return (
        [(c["Name"], c["Type"]) for c in sd.get("Columns", [])],
        sd.get("Location"),
        sd.get("InputFormat"),
        sd.get("SerdeInfo", {}).get("SerializationLibrary"),
        [(c["Name"], c["Type"]) for c in definition.get("PartitionKeys", [])],
        definition.get("TableType"),
        definition.get("Parameters", {}),
    )


def apply_tables(settings: Settings, names: Iterable[str] | None = None, client: Any = None) -> dict[str, str]:
    """Create the database and the tables, update changed ones; returns {table: created|updated|unchanged}."""
    glue = client or aws_client("glue", settings)
    database = settings.athena_database
    try:
        glue.create_database(DatabaseInput={"Name": database, "Description": "churn prediction for SaaS trials"})
        log.info("glue: created database %s", database)
    except glue.exceptions.AlreadyExistsException:
        pass
    result = {}
    for name in names or [n for n, t in TABLES.items() if t.glue and not t.published]:
        if TABLES[name].published:
            raise CatalogError(f"{name} is an Iceberg table: it is created through the Iceberg catalog "
                               "(churn.core.warehouse.load_table), not as a Hive table")
        wanted = table_input(TABLES[name], settings)
        try:
            glue.create_table(DatabaseName=database, TableInput=wanted)
            action = "created"
        except glue.exceptions.AlreadyExistsException:
            existing = glue.get_table(DatabaseName=database, Name=name)["Table"]
            if _comparable(existing) == _comparable(wanted):
                action = "unchanged"
            else:
                glue.update_table(DatabaseName=database, TableInput=wanted)
                action = "updated"
        result[name] = action
        log.info("glue: %s.%s %s", database, name, action)
    return result
