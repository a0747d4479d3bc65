"""contract.value_counts: the rows of each value of one column over several files, read dictionary-encoded (the
feature job names the event types outside its configuration with it)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from churn.core.contract import value_counts


def test_values_are_counted_across_files_row_groups_and_encodings(tmp_path):
    first = tmp_path / "a.parquet"
    second = tmp_path / "b.parquet"
    pq.write_table(pa.table({"event_type": ["x", "y", "x", None], "n": [1, 2, 3, 4]}), first, row_group_size=2)
    pq.write_table(pa.table({"event_type": ["y", "z"]}), second, use_dictionary=False)
    counts = value_counts(LocalFileSystem(), [str(first), str(second)], "event_type")
    assert counts == {"x": 2, "y": 2, "z": 1, None: 1}
