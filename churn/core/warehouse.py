"""The tables this system writes, as Apache Iceberg tables partitioned by day (``dt``).

Every write is one Iceberg commit through pyiceberg: a day, or many days, are replaced by an atomic
overwrite of their partitions, so a reader (pandas here, DuckDB in ``churn query``, Athena, Spark) sees
the table before or after a run, never in between; concurrent writers are serialised by the catalog's
optimistic concurrency (a refused commit is retried on the fresh table). The catalog is a setting:
an SQL catalog (SQLite under the warehouse by default, or PostgreSQL) locally, AWS Glue in production.

Two things Iceberg does not record are kept in the commit itself:

* which days are *published* (a day with no trials is published empty), in the table property
  ``churn.published-days`` as date ranges, updated in the same commit as the data;
* which days a snapshot wrote, in its summary (``churn.partitions``), so the snapshot that produced a
  partition (what a model trained on, what a prediction scored) can be recorded and read back exactly.
"""

from __future__ import annotations

import json
import logging
import random
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from churn.core.dates import decode_days, describe_days, encode_days, nearest_days
from churn.core.iceberg_catalog import (  # noqa: F401 - the catalog's names, importable from here
    SNAPSHOT_DAYS,
    CatalogStateError,
    catalog,
    catalog_uri,
    described_failures,
    forget_table,
    identifier,
    require_own_location,
    table_uri,
    unregistered_table_error,
)
from churn.core.settings import Settings, join
from churn.core.tables import PARTITION_KEY, TABLES, Table, table

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

log = logging.getLogger(__name__)

PUBLISHED_DAYS = "churn.published-days"
# table property: {dt: fingerprint of the inputs the day was built from}, for the newest DAY_INPUTS_KEPT days. A table
# property, not a snapshot's: snapshots expire after days (setting snapshot_retention_days), the fingerprint of a day
# is needed for as long as a later job may reuse the day (instances_modeling reads instances_w1 of 3 weeks before)
DAY_INPUTS = "churn.day-inputs"
DAY_INPUTS_KEPT = 120
COMMIT_ATTEMPTS = 12
_ICEBERG_TYPES = {"string": "StringType", "date": "DateType", "int": "IntegerType", "bigint": "LongType",
                  "double": "DoubleType", "boolean": "BooleanType", "timestamp": "TimestamptzType"}


class PartitionNotFound(FileNotFoundError):
    """A partition a job needs has not been published (yet)."""


class TableWriteError(ValueError):
    """What a job tried to publish does not fit the table's declaration; nothing was written."""


@dataclass(frozen=True)
class PublishedPartition:
    table: str
    dt: str
    rows: int
    snapshot_id: int

    def as_xcom(self) -> dict:
        return {"table": self.table, "dt": self.dt, "rows": self.rows, "snapshot_id": self.snapshot_id}


# ---- catalog ------------------------------------------------------------------------------------------
# (the catalog itself, and its agreement with the folders: churn.core.iceberg_catalog)


def iceberg_schema(t: Table, settings: Settings):
    """The Iceberg schema of a table: its registry columns, then the partition column ``dt`` (a date)."""
    from pyiceberg import types
    from pyiceberg.schema import Schema

    columns = [*t.columns(settings), (PARTITION_KEY, "date")]
    fields = [types.NestedField(i, name, getattr(types, _ICEBERG_TYPES[kind])(), required=False)
              for i, (name, kind) in enumerate(columns, start=1)]
    return Schema(*fields)


def load_table(t: Table | str, settings: Settings, create: bool = False):
    """The Iceberg table of ``t``; None if absent. With ``create`` (a writer): created, or evolved to new registry
    columns, and refused when its files are not this warehouse's (a copied warehouse)."""

    t = _table(t)
    with described_failures(t, settings, "write" if create else "read"):
        return _load_table(t, settings, create)


def _load_table(t: Table, settings: Settings, create: bool):
    from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError

    cat = catalog(settings)
    try:
        tbl = cat.load_table(identifier(t, settings))
    except NoSuchTableError:
        lost = unregistered_table_error(t, settings)  # a lost catalog: never answer "absent" or create a new table
        if lost is not None:
            raise lost from None
        if not create:
            return None
        from pyiceberg.partitioning import PartitionField, PartitionSpec
        from pyiceberg.transforms import IdentityTransform

        schema = iceberg_schema(t, settings)
        spec = PartitionSpec(PartitionField(schema.find_field(PARTITION_KEY).field_id, 1000, IdentityTransform(),
                                            PARTITION_KEY))
        cat.create_namespace_if_not_exists(settings.athena_database)
        try:
            tbl = cat.create_table(identifier(t, settings), schema=schema, partition_spec=spec,
                                   location=table_uri(t.location(settings)),
                                   properties={"write.parquet.compression-codec": "snappy", "format-version": "2"})
            log.info("created Iceberg table %s.%s at %s", settings.athena_database, t.name, t.location(settings))
        except TableAlreadyExistsError:  # another writer created it first
            tbl = cat.load_table(identifier(t, settings))
    if create:
        require_own_location(tbl, t, settings)
        tbl = _evolve(tbl, t, settings)
    return tbl


def _evolve(tbl, t: Table, settings: Settings):
    """Add columns the registry declares and the table lacks (a new configured feature); old rows read NULL."""
    have = {f.name for f in tbl.schema().fields}
    wanted = iceberg_schema(t, settings)
    if all(f.name in have for f in wanted.fields):
        return tbl
    with tbl.update_schema() as update:
        update.union_by_name(wanted)
    log.info("%s: added columns %s", t.name, [f.name for f in wanted.fields if f.name not in have])
    return catalog(settings).load_table(identifier(t, settings))


def _table(t: Table | str) -> Table:
    return t if isinstance(t, Table) else table(t)


# ---- published days -----------------------------------------------------------------------------------


def published_days(tbl) -> list[date]:
    """The days a loaded Iceberg table has published (its ``churn.published-days`` property), oldest first."""
    return decode_days(tbl.properties.get(PUBLISHED_DAYS)) if tbl is not None else []


def list_partitions(t: Table | str, settings: Settings) -> list[date]:
    """Published days of the table, oldest first (metadata only: no data file is read)."""
    return published_days(load_table(t, settings))


# ---- writing ------------------------------------------------------------------------------------------


def write_partition(t: Table | str, dt: date | str, frame: pd.DataFrame | pa.Table, settings: Settings,
                    properties: Mapping[str, str] | None = None) -> PublishedPartition:
    """Publish one day (replacing it whole, in one commit)."""
    return write_partitions(t, {_as_date(dt): frame}, settings, properties)[0]


def write_partitions(t: Table | str, frames: Mapping[date, pd.DataFrame | pa.Table], settings: Settings,
                     properties: Mapping[str, str] | None = None,
                     day_inputs: Mapping[date, str] | None = None) -> list[PublishedPartition]:
    """Publish many days in one Iceberg commit: all of them replace their partitions, or none does.

    Each frame must have exactly the table's declared columns (any order; a ``dt`` column is ignored);
    values are cast to the declared types, and a value that does not fit is an error before anything is
    written. An empty frame publishes an empty day. ``properties`` go on the snapshot; ``day_inputs``
    ({dt: fingerprint}) are recorded per day in the same commit (:func:`day_inputs`); a day written without
    one loses the one it had.
    """
    import pyarrow as pa

    t = _table(t)
    if not frames:
        raise ValueError(f"{t.name}: nothing to publish")
    days = sorted(_as_date(d) for d in frames)
    schema = t.arrow_schema(settings)  # once: a feature table's columns come from the YAML configuration
    data = pa.concat_tables([_conform(t, day, frames[day], schema) for day in days])
    rows = {day: len(frames[day]) for day in days}
    snapshot_id = _commit(t, days, data, settings, dict(properties or {}), dict(day_inputs or {}))
    for day in days:
        log.info("published %s dt=%s (%d rows, snapshot %s)", t.name, day, rows[day], snapshot_id)
    return [PublishedPartition(t.name, day.isoformat(), rows[day], snapshot_id) for day in days]


def _conform(t: Table, day: date, frame, schema):
    import pyarrow as pa

    if not isinstance(frame, pa.Table):
        frame = pa.Table.from_pandas(frame, preserve_index=False)
    names = [n for n in frame.column_names if n != PARTITION_KEY]
    extra, missing = sorted(set(names) - set(schema.names)), [n for n in schema.names if n not in names]
    if extra or missing:
        raise TableWriteError(f"{t.name} dt={day}: columns do not match the table's declaration (churn/core/tables.py)"
                              + (f"; undeclared: {extra}" if extra else "") + (f"; missing: {missing}" if missing else ""))
    columns = []
    for field in schema:
        try:
            columns.append(frame.column(field.name).cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise TableWriteError(f"{t.name} dt={day}.{field.name}: a value does not fit its declared type "
                                  f"{field.type} ({exc})") from exc
    frame = pa.Table.from_arrays(columns, schema=schema)
    return frame.append_column(PARTITION_KEY, pa.array([day] * len(frame), pa.date32()))


def _commit(t: Table, days: list[date], data, settings: Settings, properties: dict[str, str],
            inputs: dict[date, str] | None = None) -> int:
    """One overwrite of ``days`` plus the published-days and day-inputs properties, retried while other writers win
    the race."""
    from pyiceberg.exceptions import CommitFailedException, ValidationException
    from pyiceberg.expressions import EqualTo, In
    from sqlalchemy.exc import OperationalError

    isos = [d.isoformat() for d in days]
    where = EqualTo(PARTITION_KEY, isos[0]) if len(isos) == 1 else In(PARTITION_KEY, isos)
    summary = {SNAPSHOT_DAYS: encode_days(days), **properties}
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        tbl = load_table(t, settings, create=True)
        published = encode_days([*published_days(tbl), *days])
        recorded = {k: v for k, v in _day_inputs(tbl).items() if k not in days} | (inputs or {})
        recorded = dict(sorted(recorded.items())[-DAY_INPUTS_KEPT:])
        try:
            with tbl.transaction() as tx, warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Delete operation did not match any records")
                tx.overwrite(data, overwrite_filter=where, snapshot_properties=summary)
                tx.set_properties({PUBLISHED_DAYS: published, DAY_INPUTS: json.dumps(
                    {k.isoformat(): v for k, v in recorded.items()}, separators=(",", ":"))})
            return tbl.current_snapshot().snapshot_id  # the commit updated tbl's metadata in place
        except (CommitFailedException, ValidationException, OperationalError) as exc:
            # another writer committed first (refused commit, pyiceberg's conflict check, or the SQLite catalog
            # locked by its commit): redo on the new table
            if attempt == COMMIT_ATTEMPTS:
                if isinstance(exc, OperationalError):
                    with described_failures(t, settings, "write"):
                        raise
                raise CatalogStateError(f"{t.name}: could not commit {isos[0]}..{isos[-1]} after {attempt} attempts: "
                                        f"other writers kept committing first ({exc}); nothing was written, "
                                        "run it again") from exc
            pause = min(2.0, 0.05 * 2 ** attempt) * random.uniform(0.5, 1.0)
            log.info("%s: commit refused (another writer committed first), retry %d in %.2f s", t.name, attempt, pause)
            time.sleep(pause)
    raise AssertionError("unreachable")


# ---- reading ------------------------------------------------------------------------------------------


def current_snapshot_id(t: Table | str, settings: Settings) -> int | None:
    tbl = load_table(t, settings)
    snap = tbl.current_snapshot() if tbl is not None else None
    return snap.snapshot_id if snap else None


def partition_snapshot(t: Table | str, dt: date | str, settings: Settings, tbl=None) -> dict | None:
    """The snapshot that last wrote partition ``dt`` ({"snapshot_id", "timestamp_ms"}); None if unknown
    (never written by this system, or its snapshot expired)."""
    tbl = tbl or load_table(t, settings)
    if tbl is None:
        return None
    day = _as_date(dt)
    for snap in sorted(tbl.snapshots(), key=lambda s: s.sequence_number or 0, reverse=True):
        properties = snap.summary.additional_properties if snap.summary else {}
        written = properties.get(SNAPSHOT_DAYS)
        if written and day in set(decode_days(written)):
            return {"snapshot_id": snap.snapshot_id, "timestamp_ms": snap.timestamp_ms, "properties": dict(properties)}
    return None


def day_inputs(t: Table | str, settings: Settings, tbl=None) -> dict[date, str]:
    """The fingerprint of the inputs each recent day was built from, as recorded by :func:`write_partitions`
    (days written without one, or older than the newest DAY_INPUTS_KEPT, have none)."""
    return _day_inputs(tbl or load_table(t, settings))


def _day_inputs(tbl) -> dict[date, str]:
    if tbl is None:
        return {}
    return {date.fromisoformat(k): v for k, v in json.loads(tbl.properties.get(DAY_INPUTS) or "{}").items()}


def partition_rows(t: Table | str, dates: list[date], settings: Settings, tbl=None) -> dict[date, int]:
    """Rows of each published day, from the table's metadata (data files' record counts; nothing is read)."""
    from pyiceberg.expressions import In

    tbl = tbl or load_table(_table(t), settings)
    counts = {d: 0 for d in dates}
    if tbl is None or not dates:
        return counts
    for task in tbl.scan(row_filter=In(PARTITION_KEY, [d.isoformat() for d in dates])).plan_files():
        value = task.file.partition[0]  # a date partition value is stored as days since 1970-01-01
        day = date(1970, 1, 1) + timedelta(days=value) if isinstance(value, int) else _as_date(value)
        if day in counts:
            counts[day] += task.file.record_count
    return counts


def read_partition(t: Table | str, dt: date | str, settings: Settings, snapshot_id: int | None = None) -> pd.DataFrame:
    """One published day into pandas (``dt`` as an ISO string), from the current or a given snapshot."""
    return read_partitions(t, [_as_date(dt)], settings, missing_ok=False, snapshot_id=snapshot_id)


def read_partitions(t: Table | str, dates: list[date], settings: Settings, missing_ok: bool = True,
                    snapshot_id: int | None = None) -> pd.DataFrame:
    """Several days from one snapshot (so a concurrent commit cannot mix versions), in date order."""
    return read_snapshot(t, dates, settings, missing_ok, snapshot_id)[0]


def read_snapshot(t: Table | str, dates: list[date], settings: Settings, missing_ok: bool = True,
                  snapshot_id: int | None = None) -> tuple[pd.DataFrame, int | None]:
    """:func:`read_partitions` and the id of the snapshot read (what a model records about its training data)."""
    from pyiceberg.expressions import In

    t = _table(t)
    tbl = load_table(t, settings)
    wanted = sorted({_as_date(d) for d in dates})
    published = set(published_days(tbl))
    if snapshot_id is not None and tbl is not None:
        snap = tbl.snapshot_by_id(snapshot_id)
        if snap is None:
            raise PartitionNotFound(f"{t.name}: snapshot {snapshot_id} does not exist (expired: see "
                                    "CHURN_SNAPSHOT_RETENTION_DAYS)")
        published = {d for d in wanted if _held_by(tbl, snap, d, d in published)}
    present = [d for d in wanted if d in published]
    missing = [d for d in wanted if d not in published]
    if missing and not missing_ok:
        raise PartitionNotFound(f"{t.name}: partition dt={missing[0]} is not published"
                                + (f" (nor {len(missing) - 1} more)" if len(missing) > 1 else "")
                                + f"; {nearest_days(missing, published)}")
    if missing:  # one line, however many days: a 90-day window must not print 90 warnings
        log.warning("%s: %d of %d partitions not published, skipped: dt=%s", t.name, len(missing), len(wanted),
                    describe_days(missing))
    if not present:
        raise PartitionNotFound(f"{t.name}: none of {len(wanted)} partitions is published "
                                f"({describe_days(wanted)}); {nearest_days(wanted, published)}")
    snap_id = snapshot_id if snapshot_id is not None else (tbl.current_snapshot().snapshot_id
                                                            if tbl.current_snapshot() else None)
    if snap_id is None:  # published, but only empty days were ever written
        arrow = _empty(t, settings)
    else:
        with described_failures(t, settings):
            arrow = tbl.scan(row_filter=In(PARTITION_KEY, [d.isoformat() for d in present]),
                             snapshot_id=snap_id).to_arrow()
    frame = arrow.to_pandas()
    frame[PARTITION_KEY] = frame[PARTITION_KEY].map(lambda d: d.isoformat() if d is not None else None).astype(object)
    if len(present) > 1:
        frame = frame.sort_values(PARTITION_KEY, kind="stable").reset_index(drop=True)
    return frame, snap_id


def _held_by(tbl, snap, day: date, published_now: bool) -> bool:
    """Whether ``day`` had been published as of ``snap``: a snapshot up to it wrote the day; if the only
    writers are newer, no; if no writer is left in the history (expired), as published now."""
    writers = [s.sequence_number or 0 for s in tbl.snapshots()
               if day in set(decode_days((s.summary.additional_properties if s.summary else {}).get(SNAPSHOT_DAYS)))]
    if not writers:
        return published_now
    return min(writers) <= (snap.sequence_number or 0)


def _empty(t: Table, settings: Settings):
    import pyarrow as pa

    schema = t.arrow_schema(settings).append(pa.field(PARTITION_KEY, pa.date32()))
    return pa.Table.from_pylist([], schema=schema)


# ---- maintenance --------------------------------------------------------------------------------------


def published_tables() -> list[Table]:
    return [t for t in TABLES.values() if t.published]


def staging_path(settings: Settings, name: str, run_id: str | None = None) -> str:
    """A private folder for an engine's intermediate output, outside every table."""
    import uuid

    return join(settings.warehouse, "_staging", name, run_id or uuid.uuid4().hex)


def _as_date(dt: date | str) -> date:
    return dt if isinstance(dt, date) else date.fromisoformat(dt)
