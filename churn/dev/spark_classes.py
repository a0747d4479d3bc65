"""Write the JVM class-data archive local Spark starts from (``make install`` runs this; a no-op when it exists).

A daily feature run is mostly fixed cost at 1k trials a day; loading and verifying Spark's classes is 2-3 s of
it. The JVM can dump the classes a run loaded into an archive (AppCDS, ``-XX:ArchiveClassesAtExit``) and map
them from it in later runs (``-XX:SharedArchiveFile``, added by ``churn.core.spark`` when the file exists).
The archive is recorded from a real run of the feature job, on a small simulated warehouse, so it holds the
classes such a run needs (Parquet, the SQL engine, code generation), then moved into place in one rename.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from datetime import date, timedelta

from churn.core.settings import Settings
from churn.core.spark import ARCHIVE_DUMP_ENV, class_archive_path

log = logging.getLogger("churn.spark_classes")


def write_class_archive(settings: Settings, force: bool = False) -> str | None:
    """Record the archive unless it exists (or ``force``); returns its path (None when the setting is empty)."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    from churn.dev.simulator import simulate
    from churn.etl_jobs.build_features import build_features

    path = class_archive_path(settings)
    if path is None or (os.path.exists(path) and not force):
        return path
    if SparkContext._active_spark_context is not None:
        raise RuntimeError("a Spark session is already running in this process; run `python -m "
                           "churn.dev.spark_classes` on its own")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.{os.getpid()}.tmp"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="churn-classes-") as workdir:
        run = Settings(warehouse=os.path.join(workdir, "warehouse"), feature_engine="spark",
                       spark_class_archive_dir="", _env_file=None)
        first = date(2026, 1, 5)
        simulate(first, 40, 30, 1, run, progress=False)
        os.environ[ARCHIVE_DUMP_ENV] = partial
        try:
            build_features(first + timedelta(days=39), first + timedelta(days=39), run)
        finally:
            del os.environ[ARCHIVE_DUMP_ENV]
            session = SparkSession.getActiveSession()
            if session is not None:
                session.stop()
            gateway = SparkContext._gateway
            if gateway is not None:  # the JVM writes the archive as it exits: wait for it
                process = gateway.proc
                gateway.shutdown()
                process.stdin.close()
                process.wait(timeout=300)
                SparkContext._gateway = SparkContext._jvm = None
    if not os.path.exists(partial):
        raise RuntimeError(f"the JVM wrote no class archive at {partial} (a JVM without AppCDS support?)")
    os.replace(partial, path)
    log.info("Spark class archive written to %s (%.0f MB) in %.0f s", path, os.path.getsize(path) / 2**20,
             time.perf_counter() - started)
    return path


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="record the archive again even if it exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")  # the recording run's own lines are noise here
    log.setLevel(logging.INFO)
    path = write_class_archive(Settings(), force=args.force)
    print(f"Spark class archive: {path or 'disabled (CHURN_SPARK_CLASS_ARCHIVE_DIR is empty)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
