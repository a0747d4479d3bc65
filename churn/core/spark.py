"""The Spark session, configured the same way for in-process runs and spark-submit."""

from __future__ import annotations

import logging
import os
from importlib.resources import files

from churn.core.settings import Settings

# Spark's own log lines at WARN on stdout (package data, so an installed wheel has it too)
LOG4J_CONFIG = str(files("churn.core") / "log4j2.properties")


def spark_uri(path: str) -> str:
    """Spark's Hadoop S3 connector is ``s3a://``; our settings speak ``s3://``."""
    return "s3a://" + path[len("s3://") :] if path.startswith("s3://") else path


def java_available() -> bool:
    """A JVM for local Spark: ``$JAVA_HOME/bin/java`` or ``java`` on PATH (what pyspark's launcher looks for)."""
    import shutil

    home = os.environ.get("JAVA_HOME")
    return bool(home and os.access(os.path.join(home, "bin", "java"), os.X_OK)) or shutil.which("java") is not None


def require_pyspark():
    """pyspark, or a one-line error naming the extra: the core installs without it (DuckDB-engine workers)."""
    try:
        import pyspark
    except ImportError:
        from churn.core.errors import MissingExtra

        raise MissingExtra("pyspark is not installed: pip install 'churn-trials[spark]', or set "
                           "CHURN_FEATURE_ENGINE=duckdb (or CHURN_SPARK_RUNNER=emr_serverless)") from None
    return pyspark


def launched_by_spark_submit() -> bool:
    """True when this Python process was started by spark-submit (or a cluster): it then owns the JVM."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def broadcast_threshold_mb(settings: Settings) -> int:
    """The largest table Spark may broadcast: 1/40 of the driver's heap (a broadcast hash relation takes a few
    times its data's size, on the driver and on every executor), at least Spark's own 10 MB."""
    amount, unit = int(settings.spark_driver_memory[:-1]), settings.spark_driver_memory[-1].lower()
    heap_mb = amount * 1024 if unit == "g" else amount
    return max(10, heap_mb // 40)


def get_spark(app_name: str, settings: Settings, short_run: bool = False):
    """The session: under spark-submit (EMR, a cluster, ``spark-submit --master …``) what it set is kept and
    only missing keys get our defaults; run in-process, a local session from the settings.

    ``short_run`` (a local JVM that will read little, see setting ``spark_short_run_mb``): the JVM compiles with
    its quick compiler only (``-XX:TieredStopAtLevel=1``). On two cores the optimizing compiler's threads take
    seconds of CPU from a run too short to gain from them (a 1k-trials daily run: ~7 s sooner), while a long
    scan runs twice as slow without them (docs/benchmarks.md). No effect when a session already runs.
    """
    require_pyspark()
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    submitted = launched_by_spark_submit()
    local = {}
    if not submitted:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # never bind or advertise a public interface
        local = {"spark.master": settings.spark_master, "spark.driver.host": os.environ["SPARK_LOCAL_IP"],
                 "spark.driver.bindAddress": os.environ["SPARK_LOCAL_IP"]}
    defaults = {
        **local,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        # sizing is configuration (docs/operations.md); spark-submit's --driver-memory etc. win over these
        "spark.driver.memory": settings.spark_driver_memory if not submitted else None,
        "spark.executor.memory": settings.spark_executor_memory if submitted else None,
        "spark.executor.cores": str(settings.spark_executor_cores) if submitted else None,
        # Joins are the optimiser's, from real sizes (materialized views are cached first); a table is broadcast
        # only under a bound that follows the driver's memory (never the cohorts of a long range: a forced
        # broadcast of 1.8 M cohort rows was an OutOfMemoryError in a 1 GB driver)
        "spark.sql.autoBroadcastJoinThreshold": f"{broadcast_threshold_mb(settings)}MB",
        "spark.sql.adaptive.autoBroadcastJoinThreshold": f"{broadcast_threshold_mb(settings)}MB",
        "spark.sql.adaptive.enabled": "true",
        # The feature job caches small tables only (its cohorts, the week-1 features and checks' counts per trial; it
        # no longer caches the cohorts' events, which once held half the unified memory while the aggregations
        # spilled 35 GB in a 30-day chunk at 10k trials/day): the cache yields its memory to the aggregations, and is
        # compressed (its counts are mostly zeros: uncompressed, a 1.2 M-trial cohort's blocks were an
        # OutOfMemoryError in a 512 MB driver, test_memory_cliff)
        "spark.memory.storageFraction": "0.1",
        "spark.sql.inMemoryColumnarStorage.compressed": "true",
        "spark.ui.enabled": "false" if not submitted else None,
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.parquet.compression.codec": "snappy",
        # local files are read as they are: a producer's stale `.x.parquet.crc` must not fail the read (the
        # contract checks every file's footer before Spark sees it); S3 has no checksum files anyway
        "spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
        # driver-side JVM only: stop the Derby metastore / spark-warehouse litter in the CWD
        "spark.sql.warehouse.dir": _local_tmp("spark-warehouse") if not submitted else None,
        "spark.driver.extraJavaOptions": " ".join(driver_java_options(settings, short_run)) if not submitted else None,
    }
    if settings.s3_endpoint_url:
        defaults["spark.hadoop.fs.s3a.endpoint"] = settings.s3_endpoint_url
        defaults["spark.hadoop.fs.s3a.path.style.access"] = "true"
    already = None
    if submitted:
        SparkContext._ensure_initialized()  # the JVM spark-submit started: its system properties hold its conf
        already = SparkConf()
    builder = SparkSession.builder.appName(app_name)
    for key, value in defaults.items():
        if value is None or (already is not None and already.contains(key)):
            continue  # spark-submit's --master, --conf and spark-defaults win
        if SparkSession.getActiveSession() is not None and key == "spark.master":
            continue
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    logging.getLogger("py4j").setLevel(logging.WARNING)  # not one INFO line per gateway connection
    return spark


def driver_java_options(settings: Settings, short_run: bool) -> list[str]:
    """The local driver JVM's options: our log configuration, no Derby litter, the class-data archive, and for a
    short run the quick compiler only."""
    return [f"-Dderby.system.home={_local_tmp('derby')}", f"-Dlog4j2.configurationFile=file:{LOG4J_CONFIG}",
            *class_archive_options(settings), *(["-XX:TieredStopAtLevel=1"] if short_run else [])]


ARCHIVE_DUMP_ENV = "CHURN_SPARK_CLASS_ARCHIVE_DUMP"  # set by churn.dev.spark_classes: write the archive at exit


def class_archive_path(settings: Settings) -> str | None:
    """The JVM class-data archive (AppCDS) of this pyspark and this Java, or None when the setting is empty.

    The JVM maps the classes a Spark run loads from it instead of loading and verifying ~15,000 classes from the
    jars one by one: a local session starts 2-3 s sooner (docs/benchmarks.md). Named by the pyspark version and
    the Java installation, so an upgrade of either uses a new file (a stale one is ignored by the JVM anyway).
    """
    import hashlib
    import shutil

    if not settings.spark_class_archive_dir:
        return None
    pyspark = require_pyspark()
    java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else shutil.which("java")
    java = os.path.realpath(java) if java else "none"
    tag = hashlib.sha256(java.encode()).hexdigest()[:8]
    return os.path.join(os.path.expanduser(settings.spark_class_archive_dir),
                        f"spark-{pyspark.__version__}-java-{tag}.jsa")


def class_archive_options(settings: Settings) -> list[str]:
    """JVM options for the class-data archive: use it when present; write it at exit when asked to."""
    dump = os.environ.get(ARCHIVE_DUMP_ENV)
    if dump:
        return [f"-XX:ArchiveClassesAtExit={dump}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
    path = class_archive_path(settings)
    if path and os.path.exists(path):
        return [f"-XX:SharedArchiveFile={path}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
    return []


def _local_tmp(name: str) -> str:
    import tempfile

    path = os.path.join(tempfile.gettempdir(), "churn-spark", name)
    os.makedirs(path, exist_ok=True)
    return path
