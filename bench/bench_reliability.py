"""Reliability of publishing: forced crash points, random kills and concurrent readers/writers.

Counts, not seconds: cases tried, kills, reads, partial reads seen (goal 0), rows lost (goal 0). Uses the
same writer as the tests (``churn.dev.torture``) against a fresh local warehouse (SQLite catalog).
``python bench/bench_reliability.py --kills 52``; the result goes to docs/benchmarks.md (Reliability).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

DAY = date(2026, 3, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=52)
    parser.add_argument("--crash-rounds", type=int, default=5, help="runs per forced crash point")
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()

    from churn.core.settings import Settings
    from churn.core.warehouse import list_partitions, read_partition, write_partition
    from churn.dev.torture import CRASH_POINTS, version_frame, whole

    root = Path(tempfile.mkdtemp(prefix="churn-bench-reliability-"))
    settings = Settings(warehouse=str(root / "warehouse"), _env_file=None)
    write_partition("instances_w1", DAY, version_frame(settings, DAY, "b"), settings)
    counts = {"cases": 0, "kills": 0, "reads": 0, "partial_reads": 0, "rows_lost": 0, "writer_errors": 0}

    def writer(rounds: int, crash: str | None = None):
        cmd = [sys.executable, "-m", "churn.dev.torture", settings.warehouse, DAY.isoformat(), str(rounds)]
        return subprocess.Popen([*cmd, *([crash] if crash else [])], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def check() -> None:
        counts["reads"] += 1
        frame = read_partition("instances_w1", DAY, settings)
        if whole(frame) is None:
            counts["partial_reads"] += 1
        if DAY not in list_partitions("instances_w1", settings) or frame.empty:
            counts["rows_lost"] += 1

    for point in CRASH_POINTS:  # forced crash points
        for _ in range(args.crash_rounds):
            counts["cases"] += 1
            w = writer(1, point)
            if w.wait() == 9:
                counts["kills"] += 1
            check()
    rng = random.Random(args.seed)
    for _ in range(args.kills):  # random kills while two writers race and this process reads
        counts["cases"] += 1
        racers = [writer(50), writer(50)]
        stop = time.monotonic() + rng.uniform(1.0, 4.0)
        while time.monotonic() < stop:
            check()
        victim = rng.choice(racers)
        victim.kill()
        counts["kills"] += 1
        for w in racers:
            if w is not victim:
                w.kill()
            w.wait()
        check()
    for _ in range(3):  # concurrent writers to completion: every refused commit must be retried, not lost
        counts["cases"] += 1
        racers = [writer(10), writer(10)]
        while any(w.poll() is None for w in racers):
            check()
        counts["writer_errors"] += sum(w.returncode != 0 for w in racers)
        check()
    print(counts)


if __name__ == "__main__":
    main()
