"""What a daily monitoring run reads: partitions, files and bytes, against what the previous design read.

Builds a simulated warehouse (features for the training window and the days after it, a champion,
scored days), then runs the monitoring job for one day — realised performance of the outcomes that
arrived that day and drift of the day's scored cohort — and records every file the process opens under
the warehouse (a Python audit hook: nothing in the product is instrumented; Iceberg metadata, manifests and
data files count, read through pyiceberg's fsspec FileIO so that the hook sees them). The reference, measured in
the same run, is what the previous design read every day on top: the champion's whole training window
of ``instances_modeling`` partitions, to rebuild the drift reference. Writes docs/benchmarks.md
(section "Daily monitoring reads").
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The Iceberg tables are read through pyiceberg's FileIO. Its default (pyarrow) opens files in C++, where
# the audit hook cannot see them; the fsspec FileIO reads the same files (metadata, manifests, data)
# through Python's open, so they are counted. pyiceberg reads this variable when it is first imported.
os.environ.setdefault("PYICEBERG_CATALOG__CHURN__PY_IO_IMPL", "pyiceberg.io.fsspec.FsspecFileIO")

from bench.report import record  # noqa: E402


class FileReads:
    """Files opened for reading under ``root`` while active (audit event ``open``)."""

    def __init__(self, root: str):
        self.root, self.active, self.paths = os.path.realpath(root), False, []
        sys.addaudithook(self._hook)

    def _hook(self, event, args):
        if self.active and event == "open" and isinstance(args[0], str):
            mode = args[1] if len(args) > 1 and isinstance(args[1], str) else "r"
            path = os.path.realpath(args[0])
            own_output = "/_staging/" in path  # publishing reads back what the run itself just wrote
            if path.startswith(self.root) and not own_output and "w" not in mode and "a" not in mode and os.path.isfile(path):
                self.paths.append(path)

    def summary(self) -> dict:
        unique = sorted(p for p in set(self.paths) if os.path.exists(p))
        partitions = {str(Path(p).parent) for p in unique if Path(p).parent.name.startswith("dt=")}
        return {"files": len(unique), "partitions": len(partitions), "bytes": sum(os.path.getsize(p) for p in unique)}


def window_size(settings, metadata) -> dict:
    from churn.core.tables import INSTANCES_MODELING

    window = metadata["training_window"]
    start, end = date.fromisoformat(window["start"]), date.fromisoformat(window["end_exclusive"])
    data = Path(INSTANCES_MODELING.location(settings), "data")  # Iceberg data files, by dt= folder
    files = [p for n in range((end - start).days)
             for p in (data / f"dt={(start + timedelta(days=n)).isoformat()}").glob("*") if p.is_file()]
    return {"files": len(files), "partitions": (end - start).days, "bytes": sum(p.stat().st_size for p in files)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances-per-day", type=int, default=300)
    parser.add_argument("--window", type=int, default=90, help="training window days (production: 90)")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    from churn import jobs
    from churn.core.settings import Settings
    from churn.dev.simulator import simulate
    from churn.models.registry import Registry

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="churn-bench-monitoring-"))
    settings = Settings(warehouse=str(workdir / "warehouse"), training_window_days=args.window, _env_file=None)
    run_date = date(2026, 6, 1)
    first_dt = run_date - timedelta(days=args.window)
    monitored = run_date + timedelta(days=settings.label_window_days - settings.first_week_days)  # outcomes of a scored cohort
    sim_start = first_dt - timedelta(days=settings.label_window_days)
    started = time.perf_counter()
    simulate(sim_start, (monitored - sim_start).days + 1, args.instances_per_day, 7, settings, progress=False)
    jobs.build_features(settings, first_dt, monitored)
    jobs.retrain(settings, run_date)
    jobs.score(settings, [run_date, monitored])  # run_date's cohort meets its outcomes on `monitored`
    print(f"warehouse ready in {time.perf_counter() - started:.0f} s", flush=True)

    reads = FileReads(settings.warehouse)
    reads.active = True
    started = time.perf_counter()
    summary = jobs.monitor(settings, [monitored], [monitored])
    seconds = time.perf_counter() - started
    reads.active = False
    now = reads.summary()
    champion = Registry(settings).alias("champion")["version"]
    before = window_size(settings, Registry(settings).metadata(champion))
    assert summary.performance[0]["scored_rows"] > 0 and summary.drift, summary
    print(f"daily monitoring run: {now} in {seconds:.2f} s; the previous design also read the window: {before}")
    record(
        "Daily monitoring reads",
        ["trials/day", "training window (days)", "partitions read", "files read", "KB read",
         "window the previous design re-read daily (partitions / KB)", "reads vs previous", "seconds"],
        [args.instances_per_day, args.window, now["partitions"], now["files"], f"{now['bytes'] / 1024:.0f}",
         f"{before['partitions']} + {now['partitions']} / {(before['bytes'] + now['bytes']) / 1024:.0f}",
         f"{now['bytes'] / (before['bytes'] + now['bytes']):.3f}x", f"{seconds:.2f}"],
        key=str(args.instances_per_day),
    )


if __name__ == "__main__":
    main()
