"""Benchmark the feature job at one scale on both engines (setting ``feature_engine``): wall time and peak memory.

Simulates enough days of raw data at `--instances-per-day`, then runs, each in a fresh process
(`python -m churn.etl_jobs.build_features`, the EMR entry point: engine start included) with default settings:
  1. a daily run (`--ds D`, both tables) on Spark, then on DuckDB, `--daily-runs` times each (the median is
     recorded: one run varies by +-1.5 s here). It is measured in steady state: the instances_w1 partition in
     which the day's modeling cohort was scored, 23 days before, is built first (not timed), as the daily DAG
     had published it, so instances_modeling takes its week-1 features from there,
  2. the rebuild of the last `--rebuild-days` days of both tables on Spark, then on DuckDB (the same step
     plan, SQL files, contract checks and publishing, in chunks of CHURN_FEATURE_CHUNK_DAYS); the two
     engines' partitions must hold the same rows.
Each run is measured from outside: wall time, and peak memory of the whole process tree (Python, the JVM
Spark starts; each process's proportional share, PSS, so pages a forked child shares are counted once) sampled every
0.1 s with psutil, next to GNU time's largest single process (`/usr/bin/time -v`).
Writes rows into docs/benchmarks.md (section "Feature build at scale").
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import record  # noqa: E402


def measured(args: list[str], env: dict) -> dict:
    """Run the feature job in a fresh process; wall seconds, peak tree PSS (MB), GNU time's max RSS (MB)."""
    import psutil

    command = [sys.executable, "-m", "churn.etl_jobs.build_features", *args]
    if os.path.exists("/usr/bin/time"):
        command = ["/usr/bin/time", "-v", *command]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        root = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                peak[0] = max(peak[0], sum(_resident(p) for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = process.communicate()
    seconds = time.perf_counter() - started
    sampler.join()
    if process.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({process.returncode}): {err[-3000:]}")
    largest = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    return {"seconds": seconds, "tree_mb": peak[0] / 2**20, "largest_mb": int(largest.group(1)) / 1024 if largest else None}


def _resident(process) -> int:
    """A process's share of resident memory (PSS): a child the JVM forks (Hadoop's local file system runs helper
    commands) shows the JVM's whole RSS until it execs, and summing RSS counted those pages twice (a 10k/day rebuild's
    "14.9 GB" was a 4.7 GB JVM and such a child). RSS where PSS cannot be read."""
    import psutil

    try:
        return process.memory_full_info().pss
    except (psutil.AccessDenied, AttributeError):
        return process.memory_info().rss


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
    parser.add_argument("--daily-runs", type=int, default=3, help="daily runs per engine; the median is recorded")
    parser.add_argument("--runs", default="daily,rebuild",
                        help="which runs to measure: daily, rebuild or both (the others' rows in the table are kept)")
    args = parser.parse_args()
    wanted = set(args.runs.split(","))
    if not wanted or wanted - {"daily", "rebuild"}:
        parser.error(f"--runs {args.runs}: choose daily, rebuild or daily,rebuild")

    workdir = args.workdir or tempfile.mkdtemp(prefix="churn-bench-")
    warehouse = Path(workdir) / "warehouse"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}  # default settings
    env.update({"CHURN_WAREHOUSE": str(warehouse), "CHURN_FEATURE_ENGINE": "spark"})
    from churn.core.settings import Settings
    from churn.core.tables import EVENTS
    from churn.dev.simulator import simulate

    settings = Settings(warehouse=str(warehouse), feature_engine="spark", _env_file=None)
    history = args.rebuild_days + settings.label_window_days + settings.first_week_days
    sim_start = date(2026, 1, 5)
    end = sim_start + timedelta(days=history - 1)
    start = end - timedelta(days=args.rebuild_days - 1)
    if not os.path.exists(EVENTS.location(settings)):
        t0 = time.perf_counter()
        summary = simulate(sim_start, history, args.instances_per_day, args.seed, settings, progress=False)
        print(f"simulated {history} days x {args.instances_per_day}/day in {time.perf_counter() - t0:.1f}s: "
              f"{summary['events']:,} events")

    runs = {}
    if "daily" in wanted:  # the scoring partition of the day's modeling cohort, as the daily runs before left it
        scored = end - timedelta(days=settings.label_window_days - settings.first_week_days)
        measured(["--ds", scored.isoformat(), "--table", "instances_w1"], env)
    for engine in ("spark", "duckdb") if "daily" in wanted else ():
        samples = [measured(["--ds", end.isoformat()], {**env, "CHURN_FEATURE_ENGINE": engine})
                   for _ in range(args.daily_runs)]
        runs[("daily", engine)] = {"seconds": statistics.median(s["seconds"] for s in samples),
                                   "tree_mb": max(s["tree_mb"] for s in samples),
                                   "largest_mb": max(s["largest_mb"] or 0 for s in samples) or None}
        print("daily", engine, runs[("daily", engine)], "runs:", [round(s["seconds"], 1) for s in samples])
    digests = {"spark": {}, "duckdb": {}}
    for engine in ("spark", "duckdb") if "rebuild" in wanted else ():
        runs[("rebuild", engine)] = measured(["--start", start.isoformat(), "--end", end.isoformat(), "--no-resume"],
                                             {**env, "CHURN_FEATURE_ENGINE": engine})
        digests[engine] = _row_digests(settings)
        print(f"{args.rebuild_days}-day rebuild", engine, runs[("rebuild", engine)])
    differing = sorted(k for k in digests["spark"] if digests["spark"][k] != digests["duckdb"].get(k))
    if differing:
        raise SystemExit(f"the engines disagree on {len(differing)} partitions, e.g. {differing[:3]}")
    rows = _rows(settings) if "rebuild" in wanted else None
    for (what, engine), run in runs.items():
        other = runs[(what, "duckdb")]
        days = 1 if what == "daily" else args.rebuild_days
        record("Feature build at scale",
               ["trials/day", "run", "engine", "wall (s)", "peak memory, process tree (MB)",
                "largest process (MB, /usr/bin/time)", "vs DuckDB", "rows (both tables)"],
               [args.instances_per_day, "daily" if days == 1 else f"{days}-day rebuild", engine,
                f"{run['seconds']:.1f}", f"{run['tree_mb']:,.0f}",
                f"{run['largest_mb']:,.0f}" if run["largest_mb"] else "", f"{run['seconds'] / other['seconds']:.2f}x",
                rows if days > 1 else ""],
               key=f"{args.instances_per_day} | {'daily' if days == 1 else f'{days}-day rebuild'} | {engine}")


def _rows(settings) -> int:
    from churn.core.tables import FEATURE_TABLES
    from churn.core.warehouse import list_partitions, partition_rows

    return sum(sum(partition_rows(name, list_partitions(name, settings), settings).values()) for name in FEATURE_TABLES)


if __name__ == "__main__":
    main()
