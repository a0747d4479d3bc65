"""`make demo` twice: the second run starts from the same empty state (folders and Iceberg catalog)."""

from __future__ import annotations

from datetime import date

from churn.core.warehouse import list_partitions, read_partition
from churn.tools.demo import _clean_warehouse
from churn.tools.synthetic import write_w1


def test_a_rerun_of_the_demo_starts_from_an_empty_warehouse(warehouse):
    day = date(2026, 3, 1)
    write_w1(warehouse, day, 5, seed=1)
    said = []
    _clean_warehouse(warehouse, said.append)
    assert "dropped 1 tables from the Iceberg catalog" in said[-1]
    assert list_partitions("instances_w1", warehouse) == []
    write_w1(warehouse, day, 7, seed=2)  # the catalog no longer points at removed metadata
    assert len(read_partition("instances_w1", day, warehouse)) == 7
