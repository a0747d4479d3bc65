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
