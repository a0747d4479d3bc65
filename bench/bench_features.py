"""Benchmark the feature job on Spark against the same job on DuckDB (setting ``feature_engine``).

Simulates `--days` days of raw data at `--instances-per-day`, then times, in one run, each in a fresh
process (`python -m etl_jobs.build_features`, the EMR entry point: engine start included):
  1. a daily run on Spark (`--ds D`, both tables),
  2. the rebuild of the last `--rebuild-days` days of both tables in one Spark run,
  3. the same rebuild with `CHURN_FEATURE_ENGINE=duckdb`: the same step plan, SQL files, contract checks
     and publishing, on the other engine; its partitions must hold the same rows as Spark's.
Writes a markdown row per scale into docs/benchmarks.md (section "Feature build").
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import record  # noqa: E402


def _timed_subprocess(args: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "etl_jobs.build_features", *args], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def _row_digests(settings) -> dict[str, str]:
    """sha256 of every published row of each feature table, per day (Iceberg files have unique names, so
    the engines are compared by rows)."""
    from churn.core.tables import FEATURE_TABLES
    from churn.core.warehouse import list_partitions, read_partition

    out = {}
    for name in FEATURE_TABLES:
        for day in list_partitions(name, settings):
            frame = read_partition(name, day, settings)
            out[f"{name}/dt={day}"] = hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances-per-day", type=int, default=1000)
    parser.add_argument("--rebuild-days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", default=None, help="reuse a simulated warehouse here")
    args = parser.parse_args()

    workdir = args.workdir or tempfile.mkdtemp(prefix="churn-bench-")
    warehouse = Path(workdir) / "warehouse"
    env = {**os.environ, "CHURN_WAREHOUSE": str(warehouse), "CHURN_FEATURE_ENGINE": "spark"}
    from churn.core.settings import Settings
    from churn.core.tables import EVENTS
    from churn.tools.simulator import simulate

    settings = Settings(warehouse=str(warehouse), feature_engine="spark")
    history = args.rebuild_days + settings.label_window_days + settings.first_week_days
    sim_start = date(2026, 1, 5)
    end = sim_start + timedelta(days=history - 1)
    start = end - timedelta(days=args.rebuild_days - 1)
    if not os.path.exists(EVENTS.location(settings)):
        t0 = time.perf_counter()
        summary = simulate(sim_start, history, args.instances_per_day, args.seed, settings, progress=False)
        print(f"simulated {history} days x {args.instances_per_day}/day in {time.perf_counter() - t0:.1f}s: {summary}")

    daily = _timed_subprocess(["--ds", end.isoformat()], env)
    print(f"daily run on Spark (fresh process, both tables): {daily:.1f}s")
    spark_range = _timed_subprocess(["--start", start.isoformat(), "--end", end.isoformat()], env)
    spark_files = _row_digests(settings)
    print(f"{args.rebuild_days}-day rebuild, Spark (fresh process): {spark_range:.1f}s")
    duck_seconds = _timed_subprocess(["--start", start.isoformat(), "--end", end.isoformat()],
                                     {**env, "CHURN_FEATURE_ENGINE": "duckdb"})
    duck_files = _row_digests(settings)
    differing = sorted(k for k in spark_files if spark_files[k] != duck_files.get(k))
    print(f"{args.rebuild_days}-day rebuild, DuckDB engine (fresh process): {duck_seconds:.1f}s; "
          f"{len(spark_files) - len(differing)}/{len(spark_files)} partitions with rows identical to Spark's")
    if differing:
        raise SystemExit(f"the engines disagree on {len(differing)} partitions, e.g. {differing[:3]}")

    record(
        "Feature build",
        ["instances/day", "daily run incl. Spark start (s)", f"{args.rebuild_days}-day rebuild Spark (s)",
         "same job on DuckDB (s)", "Spark / DuckDB", "partitions (identical rows)"],
        [args.instances_per_day, f"{daily:.1f}", f"{spark_range:.1f}", f"{duck_seconds:.1f}",
         f"{spark_range / duck_seconds:.2f}x", len(spark_files)],
        key=str(args.instances_per_day),
    )


if __name__ == "__main__":
    main()
