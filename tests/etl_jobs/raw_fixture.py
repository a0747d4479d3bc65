"""Write tiny raw datasets in the contract's exact schema, for hand-checkable feature tests."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from churn.core.contract import EVALUATIONS_SCHEMA, EVENTS_OPTIONAL, EVENTS_SCHEMA
from churn.core.settings import Settings
from churn.core.tables import table_location

UTC = UTC


def ts(day: date, hour: float = 0.0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour)


def _nullable(schema: pa.Schema) -> pa.Schema:
    """Upstream files rarely declare non-null; the job must catch nulls itself."""
    return pa.schema([field.with_nullable(True) for field in schema])


def write_evaluations(settings: Settings, rows: list[dict], schema: pa.Schema = EVALUATIONS_SCHEMA) -> None:
    schema = _nullable(schema)
    os.makedirs(table_location("evaluations", settings), exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, os.path.join(table_location("evaluations", settings), "part-00000.parquet"))


def write_events(settings: Settings, rows: list[dict], days: list[date], with_received: bool = True) -> None:
    """Write one partition per day in ``days`` (empty ones too), putting each row in dt=date(event_time)
    unless the row names its own ``dt`` (to build contract violations)."""
    schema = _nullable(pa.schema(list(EVENTS_SCHEMA) + (list(EVENTS_OPTIONAL) if with_received else [])))
    by_day: dict[str, list[dict]] = {d.isoformat(): [] for d in days}
    for row in rows:
        row = dict(row)
        dt = row.pop("dt", None) or row["event_time"].date().isoformat()
        row.setdefault("user_id", "u1")
        row.setdefault("platform", "web")
        if with_received:
            row.setdefault("received_at", row["event_time"] + timedelta(minutes=1))
        by_day.setdefault(dt, []).append(row)
    for dt, day_rows in by_day.items():
        folder = os.path.join(table_location("events", settings), f"dt={dt}")
        os.makedirs(folder, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(day_rows, schema=schema), os.path.join(folder, "part-00000.parquet"))


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
