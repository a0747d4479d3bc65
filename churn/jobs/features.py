"""Job: publish the feature tables for a day or a range, in one engine run (Spark or DuckDB)."""

from __future__ import annotations

from datetime import date

from churn.core.settings import Settings, join
from churn.core.tables import FEATURE_TABLES, table_location
from churn.jobs.summaries import FeaturesSummary

# Settings that describe the deployment rather than the job; not forwarded to an EMR job.
_NOT_FOR_THE_JOB = {"emr_application_id", "emr_execution_role_arn", "emr_entry_point", "emr_spark_submit_parameters",
                    "spark_runner", "spark_master", "airflow_port", "alert_callback"}


def build_features(settings: Settings, start: date, end: date, tables=FEATURE_TABLES, spark=None) -> FeaturesSummary:
    """Publish dt in [start, end] of the feature tables with the engine of setting ``feature_engine``.

    A Spark session started here is stopped again (a task process must not leave a JVM behind); one
    that was already running (a test's, spark-submit's) is kept.
    """
    from etl_jobs.build_features import build_features as run

    if settings.feature_engine != "spark":
        result = run(start, end, settings, tables=tuple(tables))
    else:
        from pyspark.sql import SparkSession

        had_session = spark is not None or SparkSession.getActiveSession() is not None
        try:
            result = run(start, end, settings, tables=tuple(tables), spark=spark)
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
                           quality=result["quality"])


def emr_job_driver(settings: Settings, start: str, end: str) -> dict:
    """The ``jobDriver`` of an EMR Serverless run of the feature job for [start, end].

    The entry point is setting ``emr_entry_point`` (default ``{warehouse}/code/build_features.py``); the
    job's spark-submit parameters are ``emr_spark_submit_parameters`` followed by every setting that differs
    from its default as ``CHURN_*`` variables of the driver and the executors, so the job reads and writes
    the same warehouse with the same windows as the DAG that started it.
    """
    entry_point = settings.emr_entry_point or join(settings.warehouse, "code", "build_features.py")
    confs = []
    defaults = type(settings).model_fields
    for name, value in settings.model_dump().items():
        if name in _NOT_FOR_THE_JOB or value is None or (value == defaults[name].default and name != "warehouse"):
            continue
        text = str(value)
        if any(c.isspace() for c in text):
            raise ValueError(f"setting {name}={text!r} contains whitespace and cannot travel in sparkSubmitParameters")
        for prefix in ("spark.emr-serverless.driverEnv", "spark.executorEnv"):
            confs.append(f"--conf {prefix}.CHURN_{name.upper()}={text}")
    parameters = " ".join(p for p in [settings.emr_spark_submit_parameters.strip(), *confs] if p)
    return {"sparkSubmit": {"entryPoint": entry_point, "entryPointArguments": ["--start", start, "--end", end],
                            "sparkSubmitParameters": parameters}}
