"""The Spark session, configured the same way for in-process runs and spark-submit."""

from __future__ import annotations

import os

from churn.core.settings import Settings


def spark_uri(path: str) -> str:
    """Spark's Hadoop S3 connector is ``s3a://``; our settings speak ``s3://``."""
    return "s3a://" + path[len("s3://") :] if path.startswith("s3://") else path


def get_spark(app_name: str, settings: Settings):
    """Return the active session (under spark-submit) or start a local one from the settings."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # never bind or advertise a public interface
    builder = (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", str(settings.spark_shuffle_partitions))
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", os.environ["SPARK_LOCAL_IP"])
        .config("spark.driver.bindAddress", os.environ["SPARK_LOCAL_IP"])
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.parquet.compression.codec", "snappy")
        # local files are read as they are: a producer's stale `.x.parquet.crc` must not fail the read (the
        # contract checks every file's footer before Spark sees it); S3 has no checksum files anyway
        .config("spark.hadoop.fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem")
        # driver-side JVM only: stop the Derby metastore / spark-warehouse litter in the CWD
        .config("spark.sql.warehouse.dir", _local_tmp("spark-warehouse"))
        .config("spark.driver.extraJavaOptions", "-Dderby.system.home=" + _local_tmp("derby"))
    )
    if SparkSession.getActiveSession() is None:
        builder = builder.master(settings.spark_master)
    if settings.s3_endpoint_url:
        builder = builder.config("spark.hadoop.fs.s3a.endpoint", settings.s3_endpoint_url).config(
            "spark.hadoop.fs.s3a.path.style.access", "true"
        )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def _local_tmp(name: str) -> str:
    import tempfile

    path = os.path.join(tempfile.gettempdir(), "churn-spark", name)
    os.makedirs(path, exist_ok=True)
    return path
