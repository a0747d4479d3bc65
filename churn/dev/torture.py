"""Crash and concurrency torture of publishing (tests and ``bench/bench_reliability.py``).

A writer republishes one day of ``instances_w1`` alternately as version ``a`` (50 rows) and version ``b``
(80 rows); every row carries its version in ``instance_id``. A reader must only ever see one whole version.
``python -m churn.dev.torture WAREHOUSE DAY ROUNDS [CRASH_POINT]`` runs a writer (optionally killing
itself at a crash point, as a power cut would).
"""

from __future__ import annotations

import os
import sys
from datetime import date

SIZES = {"a": 50, "b": 80}
CRASH_POINTS = ("before_commit", "metadata_written", "after_commit")


def version_frame(settings, day: date, version: str):
    from churn.core.tables import table

    columns = table("instances_w1").columns(settings)
    n = SIZES[version]
    data = {}
    for name, kind in columns:
        if name == "instance_id":
            data[name] = [f"{version}-{k:03d}" for k in range(n)]
        elif kind == "date":
            data[name] = [day] * n
        elif kind == "double":
            data[name] = [0.5] * n
        else:
            data[name] = [1] * n
    import pandas as pd

    return pd.DataFrame(data)


def whole(frame) -> str | None:
    """The version a read saw, or None for a partial / mixed read."""
    if frame.empty:
        return None
    versions = {str(i).split("-", 1)[0] for i in frame["instance_id"]}
    if len(versions) != 1:
        return None
    version = versions.pop()
    return version if len(frame) == SIZES.get(version) else None


def arm(point: str) -> None:
    """Make this process die (exit 9, no cleanup) at a crash point of the next commit."""
    from pyiceberg.catalog import MetastoreCatalog as Catalog
    from pyiceberg.table import Transaction

    if point == "before_commit":  # data files written, nothing committed
        Transaction.commit_transaction = lambda self: os._exit(9)
    elif point == "metadata_written":  # the new metadata file exists, the catalog still points at the old
        original = Catalog._write_metadata

        def write_then_die(metadata, io, metadata_path):
            original(metadata, io, metadata_path)
            os._exit(9)

        Catalog._write_metadata = staticmethod(write_then_die)
    elif point == "after_commit":
        original_commit = Transaction.commit_transaction

        def commit_then_die(self):
            original_commit(self)
            os._exit(9)

        Transaction.commit_transaction = commit_then_die
    else:
        raise ValueError(f"unknown crash point {point!r}; choose from {CRASH_POINTS}")


def main(argv: list[str]) -> int:
    from churn.core.settings import Settings
    from churn.core.warehouse import write_partition

    warehouse, day, rounds = argv[0], date.fromisoformat(argv[1]), int(argv[2])
    settings = Settings(warehouse=warehouse, _env_file=None)
    if len(argv) > 3:
        arm(argv[3])
    for k in range(rounds):
        version = "ab"[k % 2]
        write_partition("instances_w1", day, version_frame(settings, day, version), settings)
        print(version, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
