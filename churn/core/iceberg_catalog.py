"""The Iceberg catalog of a warehouse, and the two ways it can stop telling the truth about the warehouse's folders.

The catalog (SQLite under the warehouse by default, PostgreSQL, or AWS Glue) only maps each table name to its newest
metadata file; everything else (metadata JSON, manifests, data files) lives in the table's folder, with absolute paths.

* **A lost catalog** (the SQLite file deleted, a new database, a dropped Glue database): the folders still hold every
  table. A job must not create a new table over one (its files would be orphaned): it refuses, and
  ``churn catalog recover`` registers each table again from its newest metadata file.
* **A copied warehouse** (``cp -a warehouse copy``): the copy's catalog and metadata still name the *original's*
  files, so a job in the copy would add files to the original's folders and its maintenance would delete files the
  original still uses. A table whose location is not its folder under this warehouse root is refused for writing;
  ``churn catalog recover`` in the copy rewrites each such table from the copy's own files (the data and the
  published days are kept; the snapshot history starts anew), after which the copy is independent.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import threading
import uuid

from churn.core import storage
from churn.core.dates import encode_days
from churn.core.settings import Settings, join
from churn.core.tables import TABLES, Table, table

log = logging.getLogger(__name__)

CATALOG_NAME = "churn"
SNAPSHOT_DAYS = "churn.partitions"  # a snapshot's summary: the days it wrote (see churn.core.warehouse)
METADATA_FILE = re.compile(r"^(\d+)-[0-9a-fA-F-]+(\.gz)?\.metadata\.json$")  # pyiceberg's and Spark's naming
RECOVER_HINT = "run `churn catalog recover`"  # follows a semicolon or starts a clause


class CatalogStateError(RuntimeError):
    """The catalog and the warehouse's folders disagree; the message says how and which command repairs it."""


# ---- the catalog --------------------------------------------------------------------------------------


def catalog_uri(settings: Settings) -> str:
    """The SQL catalog's SQLAlchemy URL: the setting, or SQLite next to a local warehouse."""
    if settings.table_catalog_uri:
        return settings.table_catalog_uri
    if settings.is_remote:
        raise ValueError(
            f"CHURN_TABLE_CATALOG=sql needs CHURN_TABLE_CATALOG_URI when the warehouse is on S3 ({settings.warehouse}): "
            "set CHURN_TABLE_CATALOG=glue (AWS) or a database URL such as postgresql+psycopg2://user@host/churn"
        )
    return f"sqlite:///{join(settings.warehouse, '_catalog', 'iceberg.db')}"


def owns_catalog(settings: Settings) -> bool:
    """Whether the catalog is this warehouse's own file (so a copy of the warehouse has a copy of it): a configured
    database or Glue is shared with other warehouses."""
    return settings.table_catalog == "sql" and not settings.table_catalog_uri


_CATALOG_LOCK = threading.Lock()


def catalog(settings: Settings):
    """The Iceberg catalog the settings name (one per configuration and process)."""
    io = {"s3.region": settings.aws_region}
    if settings.s3_endpoint_url:
        io["s3.endpoint"] = settings.s3_endpoint_url
    if settings.table_catalog == "glue":
        props = {"type": "glue", "glue.region": settings.aws_region, **io}
        if settings.aws_endpoint_url:
            props["glue.endpoint"] = settings.aws_endpoint_url
    else:
        props = {"type": "sql", "uri": catalog_uri(settings), **io}
    with _CATALOG_LOCK:  # threads' first uses at once would each create the SQL catalog's tables: one of them fails
        return _catalog(tuple(sorted(props.items())))


@functools.lru_cache(maxsize=16)
def _catalog(props: tuple[tuple[str, str], ...]):
    from pyiceberg.catalog import load_catalog

    uri = dict(props).get("uri", "")
    if uri.startswith("sqlite:///"):  # SQLite creates the file, not its folder
        import os

        os.makedirs(os.path.dirname(uri[len("sqlite:///"):]), exist_ok=True)
    return load_catalog(CATALOG_NAME, **dict(props))


def identifier(t: Table, settings: Settings) -> tuple[str, str]:
    return (settings.athena_database, t.name)


def table_uri(location: str) -> str:
    return location if "://" in location else "file://" + location


def forget_table(t: Table | str, settings: Settings) -> bool:
    """Remove a table from the Iceberg catalog (its files are the caller's to remove); True if it was there.
    Removing a table's folder alone would leave the catalog pointing at metadata that no longer exists."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        catalog(settings).drop_table(identifier(_table(t), settings))
    except NoSuchTableError:
        return False
    return True


@contextlib.contextmanager
def described_failures(t: Table, settings: Settings, action: str = "read"):
    """Failures of the catalog or of a table's files that a person causes (a locked or damaged catalog file, a
    truncated metadata file, a deleted data file) as one :class:`CatalogStateError` naming the file and the fix."""
    from pydantic import ValidationError
    from pyiceberg.exceptions import ValidationError as MetadataInvalid
    from sqlalchemy.exc import DatabaseError, OperationalError

    try:
        yield
    except CatalogStateError:
        raise
    except OperationalError as exc:
        where = catalog_uri(settings) if settings.table_catalog == "sql" else "the catalog"
        if "locked" in str(exc):
            raise CatalogStateError(f"{t.name}: the Iceberg catalog {where} stayed locked by another process (a job "
                                    "still writing, or a program holding the file open): retry when it has ended; "
                                    f"nothing was {'written' if action == 'write' else 'changed'}") from None
        raise CatalogStateError(f"{t.name}: the Iceberg catalog {where} cannot be used: {_first_line(exc)}") from None
    except DatabaseError as exc:  # not a database, malformed: the file is damaged
        raise CatalogStateError(
            f"{t.name}: the Iceberg catalog {catalog_uri(settings)} is damaged ({_first_line(exc.orig or exc)}): move "
            f"it aside and {RECOVER_HINT} (the tables' folders hold everything it recorded)") from None
    except (ValidationError, MetadataInvalid, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CatalogStateError(
            f"{t.name}: its current metadata file under {join(t.location(settings), 'metadata')} is damaged "
            f"({_first_line(exc)}): restore it from a backup, or register the one before it with `churn catalog "
            f"recover --table {t.name} --metadata PATH`") from None
    except FileNotFoundError as exc:
        missing = getattr(exc, "filename", None) or _first_line(exc)
        day = re.search(r"dt=(\d{4}-\d{2}-\d{2})", str(missing))
        raise CatalogStateError(
            f"{t.name}: a file of its current snapshot is missing ({missing}): restore it from a backup"
            + (f", or publish dt={day.group(1)} again (rerun its job for that day: the rerun replaces the day whole)"
               if day else "")) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


# ---- the catalog against the folders ------------------------------------------------------------------


def _same_location(a: str, b: str) -> bool:
    return storage.strip_scheme(a).rstrip("/") == storage.strip_scheme(b).rstrip("/")


def require_own_location(tbl, t: Table, settings: Settings) -> None:
    """Refuse a table whose files are not in its folder under this warehouse root (a copied warehouse, or a shared
    catalog entry of another warehouse): writing or expiring through it would change someone else's files."""
    if not _same_location(tbl.location(), t.location(settings)):
        raise CatalogStateError(
            f"{t.name}: the catalog's table lives at {tbl.location()}, not under this warehouse "
            f"({t.location(settings)}): a copied warehouse still points at the original's files; nothing was "
            f"written; " + (f"{RECOVER_HINT} in the copy to give it its own tables" if owns_catalog(settings) else
                            f"give this warehouse its own namespace (CHURN_ATHENA_DATABASE), then {RECOVER_HINT}"))


def metadata_files(t: Table, settings: Settings) -> list[tuple[int, str]]:
    """(version, path) of every Iceberg metadata file in the table's folder, oldest first."""
    folder = join(t.location(settings), "metadata")
    fs = storage.filesystem(folder, settings)
    found = [(int(m.group(1)), join(folder, name)) for name in storage.fresh_list(fs, folder)
             if (m := METADATA_FILE.match(name))]
    return sorted(found)


def unregistered_table_error(t: Table, settings: Settings) -> CatalogStateError | None:
    """When the catalog has no ``t`` but its folder holds an Iceberg table: the error that says so (None otherwise)."""
    files = metadata_files(t, settings)
    if not files:
        return None
    return CatalogStateError(
        f"{t.name}: the catalog has no table {settings.athena_database}.{t.name}, but {t.location(settings)} holds one "
        f"({len(files)} metadata files, newest {files[-1][1].rsplit('/', 1)[-1]}): the catalog was lost or replaced; "
        f"{RECOVER_HINT} to register it again (nothing was written)")


def newest_metadata(t: Table, settings: Settings) -> str | None:
    """The metadata file a lost catalog pointed at: the one of the highest version. Two files of that version (a
    writer that lost a commit race and never retried) are ambiguous: the caller names one."""
    files = metadata_files(t, settings)
    if not files:
        return None
    top = [path for version, path in files if version == files[-1][0]]
    if len(top) > 1:
        raise CatalogStateError(f"{t.name}: {len(top)} metadata files share the newest version {files[-1][0]} "
                                f"({', '.join(p.rsplit('/', 1)[-1] for p in top)}); name the one to register: "
                                f"`churn catalog recover --table {t.name} --metadata PATH`")
    return top[0]


def table_problems(settings: Settings) -> list[str]:
    """What ``churn doctor`` reports: tables the catalog lost, and tables whose files lie outside this warehouse."""
    from pyiceberg.exceptions import NoSuchTableError

    problems = []
    for t in TABLES.values():
        if not t.published:
            continue
        try:
            tbl = catalog(settings).load_table(identifier(t, settings))
        except NoSuchTableError:
            error = unregistered_table_error(t, settings)
            if error is not None:
                problems.append(str(error))
            continue
        try:
            require_own_location(tbl, t, settings)
        except CatalogStateError as exc:
            problems.append(str(exc))
    return problems


# ---- recovery -----------------------------------------------------------------------------------------


def recover(settings: Settings, names: list[str] | None = None, metadata: str | None = None) -> dict[str, str]:
    """Make the catalog true to the folders again; returns {table: what was done}. Idempotent.

    A table the catalog lacks is registered from its newest metadata file (or ``metadata``); a table whose files
    lie outside this warehouse (a copy) is rewritten from the copy's own files, once this warehouse's own catalog
    entry is dropped — a shared catalog's entry belongs to the other warehouse and is never touched."""
    from pyiceberg.exceptions import NoSuchTableError

    names = list(names or [n for n, t in TABLES.items() if t.published])
    if metadata and len(names) != 1:
        raise ValueError("--metadata names one table's metadata file: give --table too")
    result = {}
    cat = catalog(settings)
    for name in names:
        t = table(name)
        try:
            tbl = cat.load_table(identifier(t, settings))
        except NoSuchTableError:
            tbl = None
        except Exception:  # noqa: BLE001 - the entry's metadata file is damaged: only a named file can replace it
            if metadata is None:
                with described_failures(t, settings):
                    raise
            cat.drop_table(identifier(t, settings))  # the entry only; no file is removed
            tbl = None
        if tbl is not None and _same_location(tbl.location(), t.location(settings)):
            result[name] = "ok"
            continue
        if tbl is not None:
            if not owns_catalog(settings):
                require_own_location(tbl, t, settings)  # raises: the entry is another warehouse's
            cat.drop_table(identifier(t, settings))  # this copy's own catalog file: the entry only misled the copy
        chosen = metadata or newest_metadata(t, settings)
        if chosen is None:
            result[name] = "absent (created by its first job)"
            continue
        fs = storage.filesystem(chosen, settings)
        location = json.loads(fs.cat_file(storage.strip_scheme(chosen)))["location"]
        if _same_location(location, t.location(settings)):
            cat.create_namespace_if_not_exists(settings.athena_database)
            cat.register_table(identifier(t, settings), table_uri(chosen) if "://" not in chosen else chosen)
            result[name] = f"registered from {chosen.rsplit('/', 1)[-1]}"
        else:
            result[name] = _relocate(t, settings, chosen, location)
        log.info("catalog recover: %s %s", name, result[name])
    return result


def _relocate(t: Table, settings: Settings, metadata_path: str, old_location: str) -> str:
    """Rewrite a copied table as a new table of this warehouse from the copy's files (paths mapped from
    ``old_location`` to the table's folder here); the copied folder is set aside until the new table is committed."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyiceberg.table import StaticTable

    from churn.core.tables import PARTITION_KEY

    here = t.location(settings)
    old, new = storage.strip_scheme(old_location).rstrip("/"), storage.strip_scheme(here).rstrip("/")
    static = StaticTable.from_metadata(table_uri(metadata_path) if "://" not in metadata_path else metadata_path,
                                       properties={"py-io-impl": "churn.core.iceberg_catalog.RelocatedFileIO",
                                                   "churn.relocate.from": old, "churn.relocate.to": new})
    schema = static.schema().as_arrow()
    fs = storage.filesystem(here, settings)
    parts = []
    for task in static.scan().plan_files() if static.current_snapshot() else []:
        path = _relocating_io().moved(task.file.file_path, old, new)
        with fs.open(storage.strip_scheme(path), "rb") as handle:
            part = pq.read_table(handle)
        parts.append(pa.table({f.name: part.column(f.name).cast(f.type) if f.name in part.column_names
                               else pa.nulls(len(part), f.type) for f in schema}, schema=schema))
    data = pa.concat_tables(parts) if parts else schema.empty_table()
    aside = join(settings.warehouse, "_recovered", f"{t.name}-{uuid.uuid4().hex[:8]}")
    fs.mv(storage.strip_scheme(here), storage.strip_scheme(aside), recursive=True)
    cat = catalog(settings)
    cat.create_namespace_if_not_exists(settings.athena_database)
    tbl = cat.create_table(identifier(t, settings), schema=static.schema(), partition_spec=static.spec(),
                           location=table_uri(here), properties=dict(static.properties))
    if len(data):
        days = sorted(set(data.column(PARTITION_KEY).to_pylist()))
        tbl.append(data, snapshot_properties={SNAPSHOT_DAYS: encode_days(days)})
    fs.rm(storage.strip_scheme(aside), recursive=True)
    return (f"relocated: rewritten from this warehouse's copy of {old_location} ({len(data)} rows; published days "
            "kept, snapshot history starts anew)")


def _table(t: Table | str) -> Table:
    return t if isinstance(t, Table) else table(t)


@functools.cache
def _relocating_io():
    from pyiceberg.io.pyarrow import PyArrowFileIO

    class _RelocatedFileIO(PyArrowFileIO):
        """Reads a copied table's metadata chain: every absolute path under the original is read from the copy."""

        @staticmethod
        def moved(location: str, old: str, new: str) -> str:
            scheme, bare = (location.split("://", 1) + [""])[:2] if "://" in location else ("", location)
            if bare.rstrip("/") == old or bare.startswith(old + "/"):
                bare = new + bare[len(old):]
            return f"{scheme}://{bare}" if scheme else bare

        def new_input(self, location: str):
            return super().new_input(self.moved(location, self.properties["churn.relocate.from"],
                                                self.properties["churn.relocate.to"]))

    return _RelocatedFileIO


def __getattr__(name: str):  # pyiceberg imports the FileIO class by name; pyarrow is imported only when it does
    if name == "RelocatedFileIO":
        return _relocating_io()
    raise AttributeError(name)
