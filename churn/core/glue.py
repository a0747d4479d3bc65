"""The Glue Data Catalog (Athena's metastore) through boto3, with table definitions from the table registry.

Two operations, deliberately separate:

* :func:`apply_tables` — deploy time (``churn catalog apply``): create the database and every table,
  update a table whose definition changed. Idempotent.
* :func:`add_partitions` — every daily run (the DAGs' ``register_partitions`` task): add partition
  ``dt=D`` of a table. One ``BatchCreatePartition`` call per table; no table is read or compared.

With partition projection Athena ignores Glue partitions; they are there for engines that read the
catalog's partitions (Spark on EMR, Redshift Spectrum, Glue jobs). ``MSCK REPAIR`` is never run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date
from typing import Any

from churn.core.settings import Settings
from churn.core.tables import PARTITION_KEY, TABLES, Table, table_properties

log = logging.getLogger(__name__)

PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
BATCH = 100  # BatchCreatePartition takes at most 100 partitions per call


class CatalogError(RuntimeError):
    """A catalog call failed; the message says which table, which partition and what to do."""


def glue_client(settings: Settings):
    import boto3

    # aws_endpoint_url, not s3_endpoint_url: an S3-only server (MinIO) has no Glue
    return boto3.client("glue", region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url or None)


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
    glue = client or glue_client(settings)
    database = settings.athena_database
    try:
        glue.create_database(DatabaseInput={"Name": database, "Description": "churn prediction for SaaS trials"})
        log.info("glue: created database %s", database)
    except glue.exceptions.AlreadyExistsException:
        pass
    result = {}
    for name in names or [n for n, t in TABLES.items() if t.glue]:
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


def add_partitions(settings: Settings, name: str, days: Iterable[date], client: Any = None) -> dict[str, int]:
    """Add partitions ``dt=D`` of a partitioned table; returns counts of added and already present ones."""
    t = TABLES[name]
    if not t.partitioned:
        raise CatalogError(f"{name} is not partitioned: it has no dt partitions to add")
    glue = client or glue_client(settings)
    root, columns = t.location(settings), t.columns(settings)  # columns once: feature tables read their YAML
    inputs = [
        {"Values": [d.isoformat()], "StorageDescriptor": _storage_descriptor(columns, f"{root}/{PARTITION_KEY}={d.isoformat()}/")}
        for d in sorted(set(days))
    ]
    added = existed = 0
    for i in range(0, len(inputs), BATCH):
        try:
            response = glue.batch_create_partition(
                DatabaseName=settings.athena_database, TableName=name, PartitionInputList=inputs[i : i + BATCH]
            )
        except glue.exceptions.EntityNotFoundException:
            raise CatalogError(
                f"glue: table {settings.athena_database}.{name} does not exist; create the catalog tables once at "
                "deploy time with `churn catalog apply`"
            ) from None
        errors = response.get("Errors") or []
        codes = {e.get("ErrorDetail", {}).get("ErrorCode") for e in errors}
        if codes - {"AlreadyExistsException"}:
            raise CatalogError(f"glue: adding partitions of {name} failed: {errors[:3]}")
        existed += len(errors)
        added += len(inputs[i : i + BATCH]) - len(errors)
    log.info("glue: %s.%s %d partitions added, %d already there", settings.athena_database, name, added, existed)
    return {"added": added, "existed": existed}
