"""Benchmark the Spark feature build against DuckDB running the same SQL on the same Parquet.

Simulates `--days` days of raw data at `--instances-per-day`, then times, in one run:
  1. a daily run (`python -m etl_jobs.build_features --ds D`, a fresh process: includes Spark start),
  2. the rebuild of the last `--rebuild-days` days of both tables in one Spark run (fresh process),
  3. the same feature SQL (transpiled Spark -> DuckDB by sqlglot) over the same Parquet in DuckDB,
     writing the same partitioned Parquet output.
Writes a markdown row per scale into docs/benchmarks.md (section "Feature build").
"""

from __future__ import annotations

import argparse
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


def duckdb_rebuild(settings, start: date, end: date, out_dir: str) -> tuple[float, int]:
    """Same SQL files, transpiled to DuckDB, over the same raw Parquet; returns (seconds, rows)."""
    import duckdb
    import sqlglot

    from churn.feature_config import load_feature_config
    from churn.sql_templates import render
    from etl_jobs.build_features import TABLES, event_days_needed

    config = load_feature_config(settings)
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute(f"SET threads={os.cpu_count()}")
    con.execute(f"CREATE VIEW evaluations AS SELECT * FROM read_parquet('{settings.evaluations_path}/*.parquet')")
    rows = 0
    for name, table in TABLES.items():
        offset = table.offset_days(settings)
        days = event_days_needed(table, start, end, settings)
        paths = ", ".join(f"'{settings.events_path}/dt={d.isoformat()}/*.parquet'" for d in days)
        con.execute(
            "CREATE OR REPLACE VIEW events AS SELECT instance_id, user_id, event_time, event_type, platform, "
            f"received_at, dt FROM read_parquet([{paths}], hive_partitioning=true, hive_types={{'dt': VARCHAR}})"
        )
        params = {"cohort_start": start - timedelta(days=offset), "cohort_end": end - timedelta(days=offset),
                  "first_week_days": settings.first_week_days, "label_window_days": settings.label_window_days}
        cohort_sql = sqlglot.transpile(render(table.cohort_sql), read="spark", write="duckdb")[0]
        used = {k: v for k, v in params.items() if f"${k}" in cohort_sql}
        con.execute(f"CREATE OR REPLACE TEMP TABLE cohort AS {cohort_sql}", used)
        feature_sql = render("features/week1_features.sql", count_features=config.count_features,
                             mobile_platforms=config.mobile_platforms, key_event_types=config.key_event_types,
                             with_label=table.with_label)
        feature_sql = sqlglot.transpile(feature_sql, read="spark", write="duckdb")[0]
        target = os.path.join(out_dir, name)
        con.execute(f"COPY ({feature_sql} ORDER BY dt, instance_id) TO '{target}' "
                    "(FORMAT parquet, PARTITION_BY (dt), OVERWRITE_OR_IGNORE true)",
                    {"first_week_days": settings.first_week_days})
        rows += con.execute(f"SELECT count(*) FROM read_parquet('{target}/*/*.parquet')").fetchone()[0]
    return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances-per-day", type=int, default=1000)
    parser.add_argument("--rebuild-days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", default=None, help="reuse a simulated warehouse here")
    args = parser.parse_args()

    workdir = args.workdir or tempfile.mkdtemp(prefix="churn-bench-")
    env = {**os.environ, "CHURN_WAREHOUSE": os.path.join(workdir, "warehouse")}
    os.environ.update(env)
    from churn.settings import get_settings, reset_settings_cache
    from churn.simulator import simulate

    reset_settings_cache()
    settings = get_settings()
    history = args.rebuild_days + settings.label_window_days + settings.first_week_days
    sim_start = date(2026, 1, 5)
    end = sim_start + timedelta(days=history - 1)
    start = end - timedelta(days=args.rebuild_days - 1)
    if not os.path.exists(settings.events_path):
        t0 = time.perf_counter()
        summary = simulate(sim_start, history, args.instances_per_day, args.seed, settings, progress=False)
        print(f"simulated {history} days x {args.instances_per_day}/day in {time.perf_counter() - t0:.1f}s: {summary}")

    daily = _timed_subprocess(["--ds", end.isoformat()], env)
    print(f"daily run (fresh process, both tables): {daily:.1f}s")
    spark_range = _timed_subprocess(["--start", start.isoformat(), "--end", end.isoformat()], env)
    print(f"{args.rebuild_days}-day rebuild, Spark (fresh process): {spark_range:.1f}s")
    duck_seconds, duck_rows = duckdb_rebuild(settings, start, end, os.path.join(workdir, "duckdb_out"))
    print(f"{args.rebuild_days}-day rebuild, DuckDB same SQL: {duck_seconds:.1f}s ({duck_rows} rows)")

    record(
        "Feature build",
        ["instances/day", "daily run incl. Spark start (s)", f"{args.rebuild_days}-day rebuild Spark (s)",
         "same SQL on DuckDB (s)", "Spark / DuckDB", "rows (both tables)"],
        [args.instances_per_day, f"{daily:.1f}", f"{spark_range:.1f}", f"{duck_seconds:.1f}",
         f"{spark_range / duck_seconds:.2f}x", duck_rows],
        key=str(args.instances_per_day),
    )


if __name__ == "__main__":
    main()
