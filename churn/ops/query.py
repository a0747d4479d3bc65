"""`churn query "<Athena SQL>"`: run Athena SQL on the local (or S3) warehouse with DuckDB.

Every table of the registry (``churn.core.tables``) becomes a DuckDB view, in the main schema and in a schema named
after the Athena database (so ``instances_w1`` and ``churn.instances_w1`` both work). A view reads
only published data: our own tables are Iceberg tables, read by DuckDB's iceberg extension at their
current snapshot (``dt`` a date, as in Athena); raw tables (Hive-style, written by producers) read the
``*.parquet`` files directly inside each ``dt=`` folder (``dt`` a string). The SQL is translated
from Athena's dialect with sqlglot; a few Presto functions have no translation (e.g.
``format_datetime``) and then DuckDB reports them as unknown.
"""

from __future__ import annotations

import json
import posixpath
import re
import sys
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from churn.core import storage
from churn.core.duck import DuckDBSetupError, connect, load_iceberg, quote
from churn.core.settings import Settings
from churn.core.tables import TABLES

if TYPE_CHECKING:
    import pandas as pd

_DT_FOLDER = re.compile(r"^dt=\d{4}-\d{2}-\d{2}$")
IGNORED_CATALOGS = {"", "awsdatacatalog"}


class QueryError(Exception):
    """A query cannot run; the message is one line meant for the user (no traceback)."""


@dataclass(frozen=True)
class TableData:
    name: str
    root: str
    files: list[str]  # raw tables: the Parquet files; Iceberg tables: the current metadata file
    partitions: int

    @property
    def empty(self) -> bool:
        return not self.files


# ---------------------------------------------------------------------------------------------
# Finding the published files of a table
# ---------------------------------------------------------------------------------------------


def table_data(table: str, settings: Settings) -> TableData:
    """The Parquet files (full paths/URIs) a view of ``table`` reads, and its partition count."""
    root = TABLES[table].location(settings)
    if TABLES[table].published:
        from churn.core.warehouse import load_table, published_days

        tbl = load_table(table, settings)
        if tbl is None or tbl.current_snapshot() is None:
            return TableData(table, root, [], 0)
        return TableData(table, root, [tbl.metadata_location], len(published_days(tbl)))
    fs = storage.filesystem(root, settings)
    bare_root = storage.strip_scheme(root).rstrip("/")
    if not fs.exists(bare_root):
        return TableData(table, root, [], 0)
    by_folder: dict[str, list[str]] = {}
    for path in fs.find(bare_root):
        relative = path[len(bare_root) :].strip("/")
        folder, _, name = relative.rpartition("/")
        by_folder.setdefault(folder, []).append(name)
    partitioned = TABLES[table].partitioned
    files, partitions = [], 0
    for folder in sorted(by_folder):
        if partitioned and not _DT_FOLDER.match(folder):
            continue  # _staging/, stray files at the root, nested folders
        if not partitioned and folder:
            continue
        names = by_folder[folder]
        base = posixpath.join(bare_root, folder) if folder else bare_root
        chosen = sorted(n for n in names if n.endswith(".parquet") and not n.startswith(("_", ".")))
        if chosen:
            partitions += 1
            files += [storage.with_scheme(root, posixpath.join(base, n)) for n in chosen]
    return TableData(table, root, files, partitions if partitioned else 0)


# ---------------------------------------------------------------------------------------------
# DuckDB
# ---------------------------------------------------------------------------------------------


def _quote(value: str) -> str:
    return quote(value)


def _ident(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _view_sql(data: TableData) -> str:
    if TABLES[data.name].published:
        return f"SELECT * FROM iceberg_scan({_quote(data.files[0])})"
    files = "[" + ", ".join(_quote(f) for f in data.files) + "]"
    if TABLES[data.name].partitioned:
        return (
            f"SELECT * FROM read_parquet({files}, hive_partitioning = true, "
            "hive_types = {'dt': VARCHAR}, union_by_name = true)"
        )
    return f"SELECT * FROM read_parquet({files}, hive_partitioning = false, union_by_name = true)"


# ---------------------------------------------------------------------------------------------
# Parsing and checking the query
# ---------------------------------------------------------------------------------------------


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _parse(sql: str):
    import sqlglot
    from sqlglot import exp

    try:
        statements = [s for s in sqlglot.parse(sql, read="athena") if s is not None]
    except sqlglot.errors.ParseError as error:
        detail = error.errors[0] if error.errors else {}
        where = f" at line {detail.get('line')}, column {detail.get('col')}" if detail.get("line") else ""
        description = detail.get("description") or _first_line(error)
        raise QueryError(f"SQL syntax error{where}: {description}") from None
    except sqlglot.errors.SqlglotError as error:
        raise QueryError(f"SQL syntax error: {_first_line(error)}") from None
    if len(statements) != 1:
        raise QueryError(f"expected exactly one SQL statement, got {len(statements)}")
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        raise QueryError(f"only queries (SELECT / WITH) can run here, not {statement.key.upper()}")
    return statement


def _referenced_tables(statement, settings: Settings) -> list[str]:
    """Names of the warehouse tables the query reads; unknown ones raise a QueryError."""
    from sqlglot import exp

    cte_names = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    database = settings.athena_database.lower()
    found, unknown = [], []
    for table in statement.find_all(exp.Table):
        name, db, catalog = table.name.lower(), table.db.lower(), table.catalog.lower()
        if not name or (not db and name in cte_names):
            continue
        if name in TABLES and db in ("", database) and catalog in IGNORED_CATALOGS:
            if name not in found:
                found.append(name)
        else:
            unknown.append(".".join(p for p in (table.catalog, table.db, table.name) if p))
    if unknown:
        raise QueryError(f"unknown table {', '.join(sorted(set(unknown)))}; {_available(settings)}")
    return found


def _available(settings: Settings) -> str:
    parts = []
    for name in sorted(TABLES):
        data = table_data(name, settings)
        if data.empty:
            state = "no data yet"
        elif TABLES[name].partitioned:
            state = f"{data.partitions} partition{'s' if data.partitions != 1 else ''}"
        else:
            state = f"{len(data.files)} file{'s' if len(data.files) != 1 else ''}"
        parts.append(f"{settings.athena_database}.{name} ({state})")
    return "available tables: " + ", ".join(parts)


def _strip_catalog(statement):
    from sqlglot import exp

    for table in statement.find_all(exp.Table):
        if table.args.get("catalog") is not None:
            table.set("catalog", None)
    return statement


def to_duckdb(sql: str) -> str:
    """The DuckDB SQL ``run_query`` executes for an Athena query."""
    return _strip_catalog(_parse(sql)).sql(dialect="duckdb")


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


def run_query(sql: str, settings: Settings) -> pd.DataFrame:
    """Run one Athena SQL query on the warehouse and return the result as a pandas DataFrame."""
    import duckdb

    statement = _parse(sql)
    tables = _referenced_tables(statement, settings)
    data = {name: table_data(name, settings) for name in tables}
    empty = [d for d in data.values() if d.empty]
    if empty:
        described = "; ".join(
            f"{settings.athena_database}.{d.name} has no published "
            f"{'partitions' if TABLES[d.name].partitioned else 'files'} under {d.root} (view omitted)"
            for d in empty
        )
        raise QueryError(f"{described}; {_available(settings)}")
    try:
        con = connect(settings, s3=any(d.root.startswith("s3://") for d in data.values()))
    except DuckDBSetupError as error:
        raise QueryError(str(error)) from None
    try:
        if any(TABLES[name].published for name in data):
            load_iceberg(con)
        schema = settings.athena_database
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")
        for d in data.values():
            con.execute(f"CREATE VIEW {_ident(schema)}.{_ident(d.name)} AS {_view_sql(d)}")
            if schema.lower() != "main":
                con.execute(f"CREATE VIEW main.{_ident(d.name)} AS SELECT * FROM {_ident(schema)}.{_ident(d.name)}")
        duck_sql = _strip_catalog(statement).sql(dialect="duckdb")
        _confine(con, [d.root for d in data.values()])
        try:
            # through Arrow: DATE columns stay datetime.date (DuckDB's .df() makes them datetime64)
            return con.execute(duck_sql).fetch_arrow_table().to_pandas(date_as_object=True)
        except duckdb.Error as error:
            raise QueryError(f"query failed: {_first_line(error)}") from None
    finally:
        con.close()


def _confine(con, roots: list[str]) -> None:
    """From here on the connection reads only the queried tables' folders: a query cannot read another file of the
    machine or the bucket (``read_text('/etc/passwd')``), write one (``COPY … TO``), attach a database or load an
    extension, nor switch this back (the configuration is locked)."""
    import os

    allowed = sorted({(r if "://" in r else os.path.realpath(r)).rstrip("/") + "/" for r in roots})
    con.execute("SET allowed_directories = " + "[" + ", ".join(_literal(a) for a in allowed) + "]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _cell(value) -> str:
    import pandas as pd

    if value is None or (not isinstance(value, list | dict | tuple) and pd.isna(value)):
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _json_value(value):
    import pandas as pd

    if isinstance(value, list | dict | tuple):
        return value
    if value is None or pd.isna(value):
        return None
    if hasattr(value, "isoformat"):  # date, datetime, pandas Timestamp
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return value


def print_frame(frame: pd.DataFrame, max_rows: int = 50, fmt: OutputFormat = OutputFormat.table) -> None:
    import pandas as pd

    if fmt is OutputFormat.csv:
        frame.to_csv(sys.stdout, index=False)
        return
    if fmt is OutputFormat.json:
        records = [{str(k): _json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]
        sys.stdout.write(json.dumps(records) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    shown = frame.head(max_rows)
    summary = f"{len(frame)} row{'s' if len(frame) != 1 else ''}"
    if len(frame) > len(shown):
        summary += f" (first {len(shown)} shown; --max-rows to see more)"
    from churn.core.text import plain

    table = Table(show_lines=False)
    for column in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[column])
        table.add_column(plain(column), justify="right" if numeric else "left")
    for row in shown.itertuples(index=False):
        table.add_row(*(plain(_cell(v)) for v in row))
    console = Console(markup=False)
    console.print(table)
    console.print(summary, highlight=False, soft_wrap=True)
