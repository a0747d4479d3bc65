"""The raw-data contract (docs/data_contract.md): column names and types of the two raw tables."""

from __future__ import annotations

import pyarrow as pa

EVALUATIONS_TABLE = "evaluations"
EVENTS_TABLE = "events"

# Required columns; evaluations may carry extra attribute columns, which are ignored by features.
EVALUATIONS_SCHEMA = pa.schema(
    [
        pa.field("instance_id", pa.string(), nullable=False),
        pa.field("eval_start_date", pa.date32(), nullable=False),
        pa.field("converted_date", pa.date32(), nullable=True),
    ]
)

# Hive-partitioned by dt=YYYY-MM-DD, the UTC date of event_time. ``received_at`` is optional: when
# present, an event only counts if it had arrived before the feature cutoff (late arrivals).
EVENTS_SCHEMA = pa.schema(
    [
        pa.field("instance_id", pa.string(), nullable=False),
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("event_time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("platform", pa.string(), nullable=False),
    ]
)
EVENTS_OPTIONAL = pa.schema([pa.field("received_at", pa.timestamp("us", tz="UTC"), nullable=True)])


class DataContractError(ValueError):
    """Raw input breaks the contract. The message names the table, the column and example rows."""

    def __init__(self, table: str, column: str, problem: str, examples: list | None = None):
        self.table, self.column, self.problem, self.examples = table, column, problem, examples or []
        shown = "; ".join(str(e) for e in self.examples[:5])
        super().__init__(f"{table}.{column}: {problem}" + (f" — e.g. {shown}" if shown else ""))


def unreadable_file(exc: BaseException) -> DataContractError | None:
    """An engine's failure to decode a raw Parquet file (a corrupted page, a truncated file), as the contract error
    naming the file; None for any other failure. The checks read footers only: a damaged page is met by the engine."""
    import re

    text = str(exc)
    spark = re.search(r"FAILED_READ_FILE\S*\] Encountered error while reading file (\S+?)\.?\s", text)
    duck = re.search(r'Failed to read file "([^"]+)": ([^\n]+)', text)
    if not (spark or duck):
        return None
    path = (spark or duck).group(1)
    if spark:
        causes = re.findall(r"Caused by: ([^\n]+)", text)
        reason = causes[-1] if causes else "unreadable"
    else:
        reason = duck.group(2)
    return damaged_file(path, reason)


def damaged_file(path: str, reason: str) -> DataContractError:
    name = next((n for n in ("events", "evaluations") if f"/{n}/" in path), "raw data")
    return DataContractError(name, "(file)", f"{path} cannot be decoded ({reason.strip()[:200]}): the file is damaged; "
                             "replace it from its producer and run again (the days that read it were not published)")


def first_undecodable(fs, paths: list[str]) -> DataContractError | None:
    """Decode every page of each file (pyarrow) until one fails: the file an engine's anonymous decoding error
    (DuckDB's "don't know what type") came from. Only on a failure path: it reads the files whole."""
    import pyarrow.parquet as pq

    for path in paths:
        try:
            with fs.open(path, "rb") as handle:
                for _ in pq.ParquetFile(handle).iter_batches(batch_size=65536):
                    pass
        except (OSError, pa.ArrowException) as exc:
            return damaged_file(path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return None


# ---- raw files, checked one by one before any engine reads them ---------------------------------------

def type_name(dtype: pa.DataType) -> str:
    """The contract's name of an Arrow type (``string``, ``date``, ``timestamp`` …); ``timestamp[ns]`` is
    reported as such, since Spark cannot read it without losing precision."""
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    if pa.types.is_dictionary(dtype):
        return type_name(dtype.value_type)
    if pa.types.is_date32(dtype):
        return "date"
    if pa.types.is_timestamp(dtype):
        if dtype.unit == "ns":
            return "timestamp[ns]"
        return "timestamp" if dtype.tz else "timestamp_ntz"
    if pa.types.is_int32(dtype) or pa.types.is_int16(dtype) or pa.types.is_int8(dtype):
        return "int"
    if pa.types.is_int64(dtype):
        return "bigint"
    if pa.types.is_floating(dtype):
        return "double"
    if pa.types.is_boolean(dtype):
        return "boolean"
    return str(dtype)


def _expected(field: pa.Field) -> set[str]:
    kind = type_name(field.type)
    return {"timestamp", "timestamp_ntz"} if kind == "timestamp" else {kind}


def data_files(fs, folder: str) -> list[str]:
    """The Parquet files a reader may read in a folder: ``*.parquet`` directly inside it, never sub-folders,
    hidden (``.x``) or underscore (``_SUCCESS``, ``_tmp``) names, checksums or in-flight ``*.tmp`` files."""
    return [info["name"] for info in data_file_infos(fs, folder)]


def data_file_infos(fs, folder: str) -> list[dict]:
    """:func:`data_files` with each file's listing entry (size, mtime or ETag): what tells one version of a
    file from another without reading it."""
    if not fs.exists(folder):
        return []
    out = []
    for info in fs.ls(folder, detail=True):
        name = info["name"].rstrip("/").rsplit("/", 1)[-1]
        if not name.endswith(".parquet") or name.startswith((".", "_")):
            continue
        if info.get("islink"):  # a local symlink (fsspec says "other"): read what it points at
            info = _link_target(info)
        if info.get("type") == "file":
            out.append(info)
    return sorted(out, key=lambda info: info["name"])


def _link_target(info: dict) -> dict:
    """The listing entry of a symlinked file as if it were the file (its target's size and mtime); a link that
    points nowhere is an error naming it, not a file silently skipped."""
    import os

    try:
        target = os.stat(info["name"])  # follows the link
    except OSError as exc:
        raise DataContractError("raw", "*", f"{info['name']} is a symbolic link to {info.get('destination')!r}, "
                                            f"which cannot be read ({exc.strerror})") from None
    kind = "file" if os.path.isfile(info["name"]) else "directory"
    return {**info, "type": kind, "size": target.st_size, "mtime": target.st_mtime}


def check_files(table: str, fs, files: list[str], required: pa.Schema, optional: pa.Schema | None = None,
                display=lambda path: path, counts: dict | None = None, maxima: tuple[str, ...] = ()) -> dict[str, str]:
    """Check every file's footer against the contract; returns {column: type name} of the union.

    A required column missing from a file, a contract column of another type (``timestamp[ns]`` included),
    an optional column present with another type, a column whose type differs between files, or an
    unreadable file is a :class:`DataContractError` naming the table, the file and the column. Nothing is
    left to a reader's schema inference, which would silently drop or null a column.

    ``counts``, when given, gets what the footers say without reading any data: ``rows`` (all files) and
    ``nulls`` ({required column: null count}, None for a column some row group has no statistics for), and
    ``max`` ({column of ``maxima``: largest value}, None where a row group has no statistics for it).
    """
    import pyarrow.parquet as pq

    contract = {f.name: f for f in [*required, *(optional or [])]}
    seen: dict[str, tuple[str, str]] = {}  # column -> (type name, first file with it)
    if counts is not None:
        counts.update(rows=0, nulls=dict.fromkeys(required.names, 0), max=dict.fromkeys(maxima, NO_ROWS))
    for path in files:
        try:
            with fs.open(path, "rb") as handle:
                footer = pq.ParquetFile(handle)
                metadata, schema = footer.metadata, footer.schema_arrow
        except Exception as exc:  # noqa: BLE001 - any unreadable footer is the same contract error
            raise DataContractError(table, "*", f"file {display(path)} is not a readable Parquet file "
                                    f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                                    "remove or rewrite it") from None
        names = set(schema.names)
        for field in required:
            if field.name not in names:
                raise DataContractError(table, field.name, f"required column is missing in file {display(path)} "
                                        f"(found columns: {sorted(names)})")
        for field in schema:
            kind = type_name(field.type)
            if field.name in contract and kind not in _expected(contract[field.name]):
                hint = "; write microseconds (e.g. pandas .astype('datetime64[us, UTC]'))" if kind == "timestamp[ns]" else ""
                raise DataContractError(table, field.name, f"expected type {type_name(contract[field.name].type)}, "
                                        f"found {kind} in file {display(path)}{hint}")
            if field.name in seen and seen[field.name][0] != kind:
                raise DataContractError(table, field.name, f"type {kind} in file {display(path)} differs from "
                                        f"{seen[field.name][0]} in file {display(seen[field.name][1])} (mixed schemas)")
            seen.setdefault(field.name, (kind, path))
        if counts is not None:
            _count_from_footer(metadata, counts)
    return {name: kind for name, (kind, _) in seen.items()}


def value_counts(fs, files: list[str], column: str) -> dict:
    """{value: rows} of one string column over these files (None: nulls): the column's chunks only, read dictionary-
    encoded, so counting follows the few distinct values, not the rows (154 M events' types in ~2 s)."""
    from collections import Counter

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    totals: Counter = Counter()
    for path in files:
        with fs.open(path, "rb") as handle:
            values = pq.read_table(handle, columns=[column], read_dictionary=[column]).column(0)
        totals.update({row["values"]: row["counts"] for row in pc.value_counts(values).to_pylist()})
    return dict(totals)


def _count_from_footer(metadata, counts: dict) -> None:
    counts["rows"] += metadata.num_rows
    index = {metadata.schema.column(i).path: i for i in range(metadata.num_columns)}
    for name, nulls in counts["nulls"].items():
        for group in range(metadata.num_row_groups):
            stats = metadata.row_group(group).column(index[name]).statistics if name in index else None
            if nulls is None or stats is None or not stats.has_null_count:
                nulls = None
                break
            nulls += stats.null_count
        counts["nulls"][name] = nulls
    for name, largest in counts["max"].items():
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            if largest is None or name not in index:  # unknown already, or the column is absent: nulls only
                break
            stats = row_group.column(index[name]).statistics
            if row_group.num_rows == 0 or (stats is not None and stats.has_null_count
                                           and stats.null_count == row_group.num_rows):
                continue  # no values
            if stats is None or not stats.has_min_max:
                largest = None
                break
            largest = stats.max if largest is NO_ROWS else max(largest, stats.max)
        counts["max"][name] = largest


NO_ROWS = object()  # counts["max"] of a column without a value in any file
