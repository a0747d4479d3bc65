"""Benchmark the deduplication of the cohorts' events on Spark, with and without the partial aggregation.

A cohort's events are rarely exact duplicates, so the per-task hash map of a partial aggregation before the shuffle
reduces nothing. The feature job planned this query (sql/features/cohort_events.sql) without it while it cached the
deduplicated events; since 2026-12-05 the deduplication runs inside the week-1 query (not cached, Spark's plan), and
this benchmark is kept to measure the choice on the query alone. It runs the product's SQL on a simulated warehouse
in one Spark session (the product's ``get_spark``), both plans alternately on the same files, and records the median
of each and their ratio in docs/benchmarks.md (section "Deduplication of events on Spark"). The first round warms
the JVM and is not counted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import record  # noqa: E402

BYPASS_PARTIAL_AGGREGATION = "spark.sql.execution.bypassPartialAggregation"  # Spark 4.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="a warehouse simulated by bench_features.py (or the simulator)")
    parser.add_argument("--first-cohort", default="2026-03-13", help="first eval_start_date of the cohorts")
    parser.add_argument("--cohort-days", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from churn.core.settings import Settings
    from churn.core.spark import get_spark
    from churn.core.sql_templates import render
    from churn.core.tables import EVALUATIONS, EVENTS
    from churn.etl_jobs.build_features import cohort_events_sql
    from churn.etl_jobs.engines import SparkEngine

    settings = Settings(warehouse=str(Path(args.workdir) / "warehouse"), _env_file=None)
    first = date.fromisoformat(args.first_cohort)
    last = first + timedelta(days=args.cohort_days - 1)
    event_days = [first + timedelta(days=n) for n in range(args.cohort_days + settings.first_week_days - 1)]
    spark = get_spark("bench_spark_dedup", settings)
    engine = SparkEngine(settings, spark)
    root = EVENTS.location(settings)
    folders = [f"{root}/dt={d.isoformat()}" for d in event_days]
    spark.read.option("basePath", root).parquet(*folders).createOrReplaceTempView("events_raw")
    spark.read.parquet(EVALUATIONS.location(settings)).createOrReplaceTempView("evaluations")
    engine.create_view("cohort", render("features/cohort.sql", starts_in=f"eval_start_date BETWEEN DATE '{first}' "
                                                                     f"AND DATE '{last}'"),
                       {"first_week_days": settings.first_week_days}, materialize=True)
    sql = cohort_events_sql("CAST(received_at AS TIMESTAMP)")
    seconds: dict[str, list[float]] = {"partial aggregation (Spark's plan)": [], "no partial aggregation": []}
    for round_ in range(args.rounds + 1):
        for plan, bypass in zip(seconds, ("false", "true"), strict=True):
            spark.conf.set(BYPASS_PARTIAL_AGGREGATION, bypass)
            started = time.perf_counter()
            spark.sql(sql).write.format("noop").mode("overwrite").save()
            if round_:
                seconds[plan].append(time.perf_counter() - started)
                print(f"round {round_}: {plan}: {seconds[plan][-1]:.2f} s", flush=True)
    spark.stop()
    reference = statistics.median(seconds["partial aggregation (Spark's plan)"])
    for plan, runs in seconds.items():
        median = statistics.median(runs)
        record("Deduplication of events on Spark",
               ["plan", "cohort days", "event days", "median (s)", "vs Spark's plan"],
               [plan, args.cohort_days, len(event_days), f"{median:.2f}", f"{median / reference:.2f}x"], key=plan)
        print(f"{plan}: median {median:.2f} s ({median / reference:.2f}x)")


if __name__ == "__main__":
    main()
