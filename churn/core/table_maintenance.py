"""Keeping the tables' folders to what their snapshots use: expired history, and files no snapshot knows.

Expiring snapshots is one Iceberg commit; deleting the files only they used comes after it, so a run killed in
between leaves files no snapshot references. So does a writer killed after writing data files but before its
commit. Both are *orphans*: files under a table's ``data/`` that no snapshot lists. Every maintenance run removes
the orphans older than a grace period (a running writer's files are younger), so a rerun finishes what a killed
run left.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from churn.core import storage
from churn.core.iceberg_catalog import catalog, identifier, require_own_location
from churn.core.settings import Settings, join
from churn.core.tables import Table, table

log = logging.getLogger(__name__)

ORPHAN_GRACE = timedelta(days=1)  # a data file this old that no snapshot lists belongs to no running writer


def expire_snapshots(t: Table | str, settings: Settings, retention_days: int, now: datetime | None = None) -> dict:
    """Drop snapshots older than ``retention_days`` (never the current one), then every data file no remaining
    snapshot uses and older than ORPHAN_GRACE (those the expired snapshots used, and those killed runs left)."""
    from churn.core.warehouse import load_table

    t = t if isinstance(t, Table) else table(t)
    now = now or datetime.now(UTC)
    tbl = load_table(t, settings)
    result = {"table": t.name, "expired_snapshots": 0, "deleted_files": 0, "orphans_deleted": 0}
    if tbl is None:
        return result
    require_own_location(tbl, t, settings)  # never delete files another warehouse uses
    current = tbl.current_snapshot().snapshot_id if tbl.current_snapshot() else None
    cutoff = now - timedelta(days=retention_days)
    old = [s.snapshot_id for s in tbl.snapshots()
           if s.timestamp_ms < cutoff.timestamp() * 1000 and s.snapshot_id != current]
    before = _referenced(tbl)
    if old:
        tbl.maintenance.expire_snapshots().by_ids(old).commit()
        tbl = catalog(settings).load_table(identifier(t, settings))
    used = _referenced(tbl)
    unused = before - used
    orphans = set(_data_files(t, settings, now)) - used - unused
    for path in sorted(unused | orphans):
        tbl.io.delete(path)
    result.update(expired_snapshots=len(old), deleted_files=len(unused), orphans_deleted=len(orphans))
    if old or orphans:
        log.info("%s: expired %d snapshots older than %s, deleted %d data files they alone used and %d orphaned "
                 "data files", t.name, len(old), cutoff, len(unused), len(orphans))
    return result


def _referenced(tbl) -> set[str]:
    """Every data file any snapshot of the table lists, as a path without scheme."""
    if tbl.current_snapshot() is None and not tbl.snapshots():
        return set()
    return {storage.strip_scheme(row["file_path"])
            for row in tbl.inspect.all_data_files().select(["file_path"]).to_pylist()}


def _data_files(t: Table, settings: Settings, now: datetime) -> list[str]:
    """The Parquet files under the table's ``data/`` last written before ``now - ORPHAN_GRACE`` (paths without scheme)."""
    folder = join(t.location(settings), "data")
    fs = storage.filesystem(folder, settings)
    fs.invalidate_cache()
    bare = storage.strip_scheme(folder)
    if not fs.exists(bare):
        return []
    limit = (now - ORPHAN_GRACE).timestamp()
    found = []
    for path, info in fs.find(bare, detail=True).items():
        stamp = info.get("mtime") or info.get("LastModified")
        seconds = stamp.timestamp() if hasattr(stamp, "timestamp") else float(stamp or now.timestamp())
        if path.endswith(".parquet") and seconds < limit:
            found.append(storage.strip_scheme(path))
    return found
