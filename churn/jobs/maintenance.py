"""Job: table maintenance — expire old snapshots of the Iceberg tables and remove abandoned staging folders."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from churn.core.settings import Settings, join
from churn.jobs.summaries import MaintenanceSummary

STAGING_GRACE = timedelta(days=1)  # a staging folder this old belongs to no running job


def maintain_tables(settings: Settings, now: datetime | None = None) -> MaintenanceSummary:
    """Keep ``snapshot_retention_days`` of history per table (the current snapshot always stays), delete the
    data files only expired snapshots used, and delete staging folders left by killed runs."""
    from churn.core import storage
    from churn.core.table_maintenance import expire_snapshots
    from churn.core.warehouse import published_tables

    now = now or datetime.now(UTC)
    tables = [expire_snapshots(t, settings, settings.snapshot_retention_days, now) for t in published_tables()]
    removed = []
    staging = join(settings.warehouse, "_staging")
    fs = storage.filesystem(staging, settings)
    for name in storage.list_dir(staging, settings):
        for run in storage.list_dir(join(staging, name), settings):
            path = storage.strip_scheme(join(staging, name, run))
            modified = _modified(fs, path)
            if modified is not None and now.timestamp() - modified > STAGING_GRACE.total_seconds():
                fs.rm(path, recursive=True)
                removed.append(f"{name}/{run}")
    return MaintenanceSummary(retention_days=settings.snapshot_retention_days, tables=tables,
                              staging_removed=removed)


def _modified(fs, path: str) -> float | None:
    """Newest modification time under ``path`` (seconds since the epoch)."""
    newest = None
    for info in fs.find(path, detail=True).values() or [fs.info(path)]:
        stamp = info.get("mtime") or info.get("LastModified")
        if stamp is None:
            continue
        seconds = stamp.timestamp() if hasattr(stamp, "timestamp") else float(stamp)
        newest = seconds if newest is None else max(newest, seconds)
    return newest if newest is not None else time.time()
