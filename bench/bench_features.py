"""Benchmark the Spark feature build against DuckDB running the same SQL on the same Parquet.

Simulates `--days` days of raw data at `--instances-per-day`, then times, in one run:
  1. a daily run (`python -m etl_jobs.build_features --ds D`, a fresh process: includes Spark start),
  2. the rebuild of the last `--rebuild-days` days of both tables in one Spark run (fresh process),
  3. the same job on DuckDB: the same SQL files (contract checks, cohorts, week-1 features, output
     tables; transpiled Spark -> DuckDB by sqlglot) over the same Parquet, writing the same
     partitioned Parquet output.
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
    """The same SQL files and steps as the Spark job, transpiled to DuckDB by sqlglot, over the same
    raw Parquet, writing the same partitioned Parquet; returns (seconds, rows)."""
    import duckdb
    import sqlglot

    from churn.feature_config import load_feature_config
    from churn.sql_templates import render
    from etl_jobs.build_features import TABLES, event_days_needed

    def duck(sql: str) -> str:
        return sqlglot.transpile(sql, read="spark", write="duckdb")[0]

    config = load_feature_config(settings)
    started = time.perf_counter()
    os.makedirs(out_dir, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute(f"CREATE VIEW evaluations AS SELECT * FROM read_parquet('{settings.evaluations_path}/*.parquet')")
    event_days = sorted({d for t in TABLES.values() for d in event_days_needed(t, start, end, settings)})
    paths = ", ".join(f"'{settings.events_path}/dt={d.isoformat()}/*.parquet'" for d in event_days)
    con.execute(
        "CREATE VIEW events AS SELECT instance_id, user_id, event_time, event_type, platform, "
        f"received_at, dt FROM read_parquet([{paths}], hive_partitioning=true, hive_types={{'dt': VARCHAR}})"
    )
    # the job's contract checks, as in the Spark runner: evaluations keys, then one pass of event quality
    con.execute("SELECT count(*), count(DISTINCT instance_id), count(*) FILTER (WHERE instance_id IS NULL), "
                "count(*) FILTER (WHERE eval_start_date IS NULL) FROM evaluations").fetchone()
    for name, table in TABLES.items():
        offset = table.offset_days(settings)
        params = {"cohort_start": start - timedelta(days=offset), "cohort_end": end - timedelta(days=offset),
                  "first_week_days": settings.first_week_days, "label_window_days": settings.label_window_days}
        cohort_sql = duck(render(table.cohort_sql))
        used = {k: v for k, v in params.items() if f"${k}" in cohort_sql}
        con.execute(f"CREATE TEMP TABLE cohort_{name} AS {cohort_sql}", used)
    con.execute("CREATE TEMP TABLE cohort AS SELECT DISTINCT instance_id, eval_start_date FROM ("
                + " UNION ALL ".join(f"SELECT instance_id, eval_start_date FROM cohort_{n}" for n in TABLES) + ")")
    quality = duck(render("features/event_quality.sql", known_event_types=config.known_event_types))
    con.execute(quality, {"first_week_days": settings.first_week_days}).fetchone()
    week1 = duck(render("features/week1_features.sql", count_features=config.count_features,
                        mobile_platforms=config.mobile_platforms, key_event_types=config.key_event_types))
    con.execute(f"CREATE TEMP TABLE week1_features AS {week1}", {"first_week_days": settings.first_week_days})
    week1_columns = [c for c, _ in config.week1_columns()]
    rows = 0
    for name, table in TABLES.items():
        sql = duck(render("features/feature_table.sql", with_label=table.with_label,
                          week1_columns=week1_columns, attribute_features=config.attribute_features,
                          cohort_view=f"cohort_{name}"))
        target = os.path.join(out_dir, name)
        con.execute(f"COPY ({sql} ORDER BY dt, instance_id) TO '{target}' "
                    "(FORMAT parquet, PARTITION_BY (dt), OVERWRITE_OR_IGNORE true)")
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
