"""`churn catalog …`: Athena DDL files and the Glue / Athena catalog, from the table registry.

* ``ddl`` prints the DDL (filled for the current settings), ``--write`` regenerates ``sql/athena/``,
  ``--check`` fails when a file differs from what the registry generates.
* ``apply`` creates or updates the database and tables once, at deploy time: the raw tables in Glue with
  boto3 and the Iceberg tables through the Iceberg catalog (default), or every table by running its DDL
  on Athena with boto3 (``--via athena``). Daily runs register nothing: Iceberg
  commits are the catalog updates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from churn.core.glue import CatalogError, apply_tables, aws_client
from churn.core.settings import Settings
from churn.core.tables import ATHENA_DIR, TABLES, ddl_statement, render_ddl

log = logging.getLogger(__name__)


def write_ddl(settings: Settings, names: Iterable[str] | None = None) -> list[Path]:
    """Regenerate the checked-in DDL files; returns the files whose content changed."""
    changed = []
    ATHENA_DIR.mkdir(parents=True, exist_ok=True)
    for name in names or TABLES:
        t = TABLES[name]
        text = render_ddl(t, settings)
        if not t.ddl_path.exists() or t.ddl_path.read_text() != text:
            t.ddl_path.write_text(text)
            changed.append(t.ddl_path)
    return changed


def stale_ddl(settings: Settings) -> list[str]:
    """Problems with sql/athena/: files that differ from the registry, are missing, or belong to no table."""
    problems = [f"{t.ddl_path.name} differs from what the registry generates" for t in TABLES.values()
                if t.ddl_path.exists() and t.ddl_path.read_text() != render_ddl(t, settings)]
    problems += [f"{t.ddl_path.name} is missing" for t in TABLES.values() if not t.ddl_path.exists()]
    problems += [f"{p.name} belongs to no table of the registry" for p in sorted(ATHENA_DIR.glob("*.sql"))
                 if p.stem not in TABLES]
    return problems


def apply_catalog(settings: Settings, names: Iterable[str]) -> dict[str, str]:
    """Raw tables into Glue (create or update), the tables we write into the Iceberg catalog (create, or add
    new columns); returns {table: created|updated|unchanged|evolved}."""
    from churn.core.warehouse import iceberg_schema, load_table

    names = list(names)
    raw = [n for n in names if not TABLES[n].published]
    if settings.table_catalog == "glue":
        result = apply_tables(settings, raw) if raw else {}
    else:  # no Glue in this resource set: `churn query` and the jobs read the raw folders themselves
        result = {n: "not registered (CHURN_TABLE_CATALOG=sql: read from its folder)" for n in raw}
    for name in names:
        if TABLES[name].published:
            before = load_table(name, settings)
            columns = len(before.schema().fields) if before is not None else None
            after = load_table(name, settings, create=True)
            wanted = len(iceberg_schema(TABLES[name], settings).fields)
            result[name] = ("created" if before is None else "evolved" if columns != len(after.schema().fields)
                            else "unchanged")
            assert len(after.schema().fields) >= wanted
    return result


def apply_ddl_athena(settings: Settings, names: Iterable[str] | None = None, client: Any = None,
                     sleep_time: float = 2.0, timeout: float = 300.0) -> dict[str, str]:
    """Run ``CREATE DATABASE`` and each table's DDL on Athena; returns {table: query execution id}.

    boto3's Athena client with the worker's credential chain, region ``aws_region``, endpoint
    ``aws_endpoint_url`` (no Airflow connection: the same call works from a shell, a worker and CI).
    ``CREATE EXTERNAL TABLE IF NOT EXISTS`` never changes an existing table: after a feature-configuration
    change use ``churn catalog apply`` (Glue), which updates definitions.
    """
    client = client or aws_client("athena", settings)
    result_configuration = {"OutputLocation": settings.athena_output} if settings.athena_output else {}
    statements = {"<database>": f"CREATE DATABASE IF NOT EXISTS `{settings.athena_database}`"}
    statements.update({n: ddl_statement(TABLES[n], settings) for n in (names or TABLES)})
    ids = {}
    for name, statement in statements.items():
        context = {"Catalog": "AwsDataCatalog"}
        if name != "<database>":
            context["Database"] = settings.athena_database
        query_id = client.start_query_execution(
            QueryString=statement, QueryExecutionContext=context, ResultConfiguration=result_configuration,
            WorkGroup=settings.athena_workgroup,
        )["QueryExecutionId"]
        status = _wait_for_query(client, query_id, sleep_time, timeout)
        if status["State"] != "SUCCEEDED":
            raise CatalogError(f"Athena DDL for {name} ended {status['State']}: "
                               f"{status.get('StateChangeReason', 'no reason given')} (query {query_id})")
        ids[name] = query_id
        log.info("athena: %s ok (%s)", name, query_id)
    return ids


def _wait_for_query(client: Any, query_id: str, sleep_time: float, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return status
        if time.monotonic() > deadline:
            client.stop_query_execution(QueryExecutionId=query_id)
            return {"State": "CANCELLED", "StateChangeReason": f"still {status['State']} after {timeout:.0f} s"}
        time.sleep(sleep_time)


# ---- command line --------------------------------------------------------------------------------
