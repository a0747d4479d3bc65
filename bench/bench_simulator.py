"""Time `churn simulate` at production-like volume: 100k instances over 90 days (~1,111 per day).

    .venv/bin/python bench/bench_simulator.py [--days 90] [--instances-per-day 1111] [--keep DIR]

Prints wall time, volume (instances, events, bytes) and the simulator's own summary.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import date

from churn.core.settings import Settings
from churn.dev.simulator import simulate


def _size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2026-01-05")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--instances-per-day", type=int, default=1111)
    parser.add_argument("--seed", type=int, default=27)
    parser.add_argument("--keep", help="write into this warehouse folder and keep it (default: a temp folder)")
    args = parser.parse_args()

    root = args.keep or tempfile.mkdtemp(prefix="bench_simulator_")
    settings = Settings(warehouse=root)
    try:
        began = time.perf_counter()
        summary = simulate(date.fromisoformat(args.start), args.days, args.instances_per_day, args.seed,
                           settings, progress=False, overwrite=True)
        wall = time.perf_counter() - began
        size = _size(os.path.join(settings.warehouse, "raw"))
        print(f"simulate: {args.days} days x {args.instances_per_day}/day -> {summary['instances']:,} instances, "
              f"{summary['events']:,} events ({summary['week1_events_per_instance']} week-1 events/instance), "
              f"{size / 1e6:,.0f} MB raw Parquet, wall {wall:.1f} s "
              f"({summary['events'] / wall / 1e6:.2f} M events/s) on {os.cpu_count()} cores")
        print(summary)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
