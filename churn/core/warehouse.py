"""Date-partitioned Parquet tables: atomic publishing and manifest-driven reading.

A partition ``{table}/dt=YYYY-MM-DD/`` is published whole or not at all: data is first staged
elsewhere, then swapped in. Every published partition carries ``_manifest.json`` (its files, row
count and columns), written last; readers of this package read only the files a manifest lists,
so they never see a half-copied partition, even on S3 where there is no atomic rename.
"""

from __future__ import annotations

import io
import json
import logging
import os
import posixpath
import shutil
import uuid
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from churn.core import storage
from churn.core.settings import Settings, join

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
MANIFEST = "_manifest.json"


class PartitionNotFound(FileNotFoundError):
    """A partition a job needs has not been published (yet)."""


@dataclass(frozen=True)
class PublishedPartition:
    path: str
    rows: int
    files: list[str]

    def as_xcom(self) -> dict:
        return {"path": self.path, "rows": self.rows, "files": len(self.files)}


def partition_path(table_path: str, dt: date | str) -> str:
    return join(table_path, f"dt={_iso(dt)}")


def staging_path(table_path: str, run_id: str | None = None) -> str:
    """A private folder next to the table; names starting with ``_`` are ignored by Spark/Athena."""
    return join(table_path, "_staging", run_id or uuid.uuid4().hex)


def list_partitions(table_path: str, settings: Settings) -> list[date]:
    """Published partitions (those with a manifest), oldest first."""
    out = []
    for name in storage.list_dir(table_path, settings):
        if name.startswith("dt=") and storage.exists(join(table_path, name, MANIFEST), settings):
            out.append(date.fromisoformat(name[3:]))
    return sorted(out)


def write_partition(
    table_path: str, dt: date | str, frame: pd.DataFrame | pa.Table, settings: Settings
) -> PublishedPartition:
    """Publish one partition from an in-memory frame (stage as a single Parquet file, then swap)."""
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="snappy")
    stage = staging_path(table_path)
    storage.write_bytes(join(stage, "part-00000.parquet"), buffer.getvalue(), settings)
    return publish_partition(stage, table_path, dt, settings)


def publish_partition(
    staged_dir: str, table_path: str, dt: date | str, settings: Settings
) -> PublishedPartition:
    """Swap a fully written staging folder in as partition ``dt`` of ``table_path``.

    Files get deterministic names (``part-00000.parquet`` …) so a rerun with the same data
    leaves byte-identical files. If anything fails before the swap, the previous partition is
    untouched; the staging folder is removed in every case.
    """
    src_fs = storage.filesystem(staged_dir, settings)
    staged_files = sorted(
        p for p in src_fs.find(storage.strip_scheme(staged_dir)) if p.endswith(".parquet")
    )
    if not staged_files:
        raise ValueError(f"nothing staged for {table_path} dt={_iso(dt)} in {staged_dir}")
    names = [f"part-{i:05d}.parquet" for i in range(len(staged_files))]
    rows, columns = 0, None
    for path in staged_files:
        with src_fs.open(path, "rb") as handle:
            meta = pq.ParquetFile(handle).metadata
            rows += meta.num_rows
            columns = columns or [meta.schema.column(i).name for i in range(meta.num_columns)]
    manifest = json.dumps({"files": names, "rows": rows, "columns": columns}, indent=1).encode()
    final = partition_path(table_path, dt)
    try:
        if not staged_dir.startswith("s3://") and not final.startswith("s3://"):
            _swap_local(staged_files, names, manifest, final)
        else:
            _swap_by_copy(staged_dir, staged_files, names, manifest, final, settings)
    finally:
        _remove(staged_dir, settings)
    log.info("published %s (%d rows, %d files)", final, rows, len(names))
    return PublishedPartition(final, rows, names)


def _swap_local(staged_files: list[str], names: list[str], manifest: bytes, final: str) -> None:
    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    ready = os.path.join(os.path.dirname(parent), "_staging", f"ready-{uuid.uuid4().hex}")
    os.makedirs(ready)
    for src, name in zip(staged_files, names, strict=True):
        os.replace(src, os.path.join(ready, name))
    with open(os.path.join(ready, MANIFEST), "wb") as handle:
        handle.write(manifest)
    old = None
    if os.path.exists(final):
        old = ready + "-old"
        os.replace(final, old)  # the two renames leave the partition absent for microseconds
    os.replace(ready, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _swap_by_copy(
    staged_dir: str, staged_files: list[str], names: list[str], manifest: bytes, final: str, settings: Settings
) -> None:
    """Object stores have no rename: copy new files, switch the manifest, then drop stale files."""
    dst_fs = storage.filesystem(final, settings)
    src_fs = storage.filesystem(staged_dir, settings)
    bare_final = storage.strip_scheme(final)
    same_store = type(src_fs) is type(dst_fs)
    old = set(dst_fs.find(bare_final)) if dst_fs.exists(bare_final) else set()
    for src, name in zip(staged_files, names, strict=True):
        target = posixpath.join(bare_final, name)
        if same_store:
            dst_fs.copy(src, target)
        else:
            dst_fs.put_file(src, target)
    dst_fs.pipe_file(posixpath.join(bare_final, MANIFEST), manifest)
    keep = {posixpath.join(bare_final, n) for n in [*names, MANIFEST]}
    stale = sorted(p for p in old if p not in keep)
    if stale:
        dst_fs.rm(stale)


def _remove(path: str, settings: Settings) -> None:
    fs = storage.filesystem(path, settings)
    bare = storage.strip_scheme(path)
    try:
        if fs.exists(bare):
            fs.rm(bare, recursive=True)
    except OSError:  # cleanup must never hide the real error
        log.warning("could not remove staging folder %s", path)


def read_partition(table_path: str, dt: date | str, settings: Settings) -> pd.DataFrame:
    """Read one published partition (the files its manifest lists) into pandas, with a ``dt`` column."""
    import pandas as pd

    final = partition_path(table_path, dt)
    manifest_path = join(final, MANIFEST)
    if not storage.exists(manifest_path, settings):
        raise PartitionNotFound(f"{table_path}: partition dt={_iso(dt)} is not published ({manifest_path} missing)")
    manifest = json.loads(storage.read_bytes(manifest_path, settings))
    fs = storage.filesystem(final, settings)
    frames = []
    for name in manifest["files"]:
        with fs.open(posixpath.join(storage.strip_scheme(final), name), "rb") as handle:
            frames.append(pq.read_table(handle).to_pandas())
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame["dt"] = _iso(dt)
    return frame


def read_partitions(
    table_path: str, dates: list[date], settings: Settings, missing_ok: bool = True
) -> pd.DataFrame:
    """Concatenate several partitions; missing ones are skipped (and logged) unless ``missing_ok`` is False."""
    import pandas as pd

    frames = []
    for dt in dates:
        try:
            frames.append(read_partition(table_path, dt, settings))
        except PartitionNotFound:
            if not missing_ok:
                raise
            log.warning("%s: no partition dt=%s, skipped", table_path, _iso(dt))
    if not frames:
        raise PartitionNotFound(f"{table_path}: none of {len(dates)} partitions is published")
    return pd.concat(frames, ignore_index=True)


def _iso(dt: date | str) -> str:
    return dt if isinstance(dt, str) else dt.isoformat()
