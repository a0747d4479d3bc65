"""Job: publish the feature tables for a day or a range, in one engine run (Spark or DuckDB)."""

from __future__ import annotations

from datetime import date

from churn.core.settings import Settings
from churn.core.tables import FEATURE_TABLES, table_location
from churn.jobs.summaries import FeaturesSummary


def build_features(settings: Settings, start: date, end: date, tables=FEATURE_TABLES, spark=None,
                   resume: bool = True) -> FeaturesSummary:
    """Publish dt in [start, end] of the feature tables with the engine of setting ``feature_engine``, in
    chunks of ``feature_chunk_days`` (``resume``: keep the chunks already committed with the same inputs).

    A Spark session started here is stopped again (a task process must not leave a JVM behind); one
    that was already running (a test's, spark-submit's) is kept.
    """
    from churn.etl_jobs.build_features import build_features as run

    if settings.feature_engine != "spark":
        result = run(start, end, settings, tables=tuple(tables), resume=resume)
    else:
        from churn.core.spark import require_pyspark

        require_pyspark()
        from pyspark.sql import SparkSession

        had_session = spark is not None or SparkSession.getActiveSession() is not None
        try:
            result = run(start, end, settings, tables=tuple(tables), spark=spark, resume=resume)
        finally:
            active = SparkSession.getActiveSession()
            if active is not None and not had_session:
                active.stop()
    out = {}
    for name, table in result["tables"].items():
        parts = table["partitions"]
        out[name] = {
            "location": table_location(name, settings),
            "snapshot_id": parts[-1]["snapshot_id"] if parts else None,
            "partitions": len(parts),
            "rows": sum(p["rows"] for p in parts),
            "rows_by_dt": {p["dt"]: p["rows"] for p in parts} if len(parts) <= 31 else None,
        }
    return FeaturesSummary(start=start, end=end, engine=result["engine"], seconds=result["seconds"], tables=out,
                           quality=result["quality"], chunks=result["chunks"])
