"""The engines that run the feature job's step plan: Spark (clusters, EMR) and DuckDB (one machine).

Both take the same SQL — the files in ``sql/features/`` and the plan's own statements, written in
Spark SQL with named parameters (``:name``). DuckDB gets them translated by sqlglot. An engine only
registers Parquet as views, runs SQL, and stages a query's rows as Parquet partitioned by ``dt``; the
checks, the cohorts and the publishing are the plan's (``churn.etl_jobs.build_features``), identical for both.
"""

from __future__ import annotations

import logging
import re
from typing import Protocol

from churn.core.settings import Settings
from churn.core.spark import get_spark, spark_uri

log = logging.getLogger("churn.features")

_PARAM = re.compile(r":([a-z_][a-z0-9_]*)\b")


def used_params(sql: str, params: dict | None) -> dict:
    """Only the parameters a statement names (engines reject unused ones)."""
    names = set(_PARAM.findall(sql))
    return {k: v for k, v in (params or {}).items() if k in names}


class Engine(Protocol):
    name: str
    concurrent: bool  # queries may run from several threads at once (Spark's scheduler runs them side by side)

    def register_parquet(self, view: str, files: list[str], columns: dict[str, str],
                         hive_root: str | None = None) -> None:
        """Expose exactly these Parquet files as one view, their columns unioned by name; ``columns`` is that
        union as the contract found it in the footers ({name: type name}); ``hive_root`` adds the ``dt`` column
        of ``dt=`` folders, a DATE (converted once per folder, where a string would be parsed per row)."""

    def register_arrow(self, view: str, rows) -> None:
        """Expose an Arrow table (rows read from a published table) as a view."""

    def create_view(self, view: str, sql: str, params: dict | None = None, materialize: bool = False,
                    read_whole_next: bool = False) -> None:
        """``materialize``: computed once and kept. ``read_whole_next``: the next query reads every row of it
        and does not need its real size to plan a join, so Spark fills its cache in that query instead of a count
        job of its own; DuckDB creates the table at once either way."""

    def rows(self, sql: str, params: dict | None = None) -> list[dict]: ...

    def stage(self, sql: str, stage_dir: str) -> None:
        """Write the query's rows as Parquet under ``stage_dir/feature_table=…/dt=…/``, sorted by instance_id."""

    def size_for(self, raw_bytes: int) -> dict:
        """Size the next chunk's work from the raw bytes it reads (Spark: its shuffles; DuckDB sizes itself);
        the settings it chose, for the run's summary."""

    def release(self) -> None:
        """Drop what a chunk materialized, so the next chunk starts with the memory the first one had."""

    def close(self) -> None: ...


# contract type names (churn.core.contract.type_name) that are exactly one Spark type; "int" and "double" also name
# narrower Parquet types (int8, float32), which Spark must read with their own type
SPARK_EXACT_TYPES = {"string", "date", "timestamp", "timestamp_ntz", "bigint", "boolean"}


STAGE_PARTITIONS = ("feature_table", "dt")  # the staged folders: one per table and day
SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"
RAW_BYTES_PER_SHUFFLE_PARTITION = 96 * 2**20
FEWEST_SHUFFLE_PARTITIONS = 4


def shuffle_partitions(raw_bytes: int, most: int) -> int:
    """A chunk's shuffle partitions: one per 96 MB of raw Parquet it reads, at least 4, at most ``most`` (the
    session's, i.e. setting ``spark_shuffle_partitions`` or spark-submit's). A 30-day chunk at 10k trials/day (3 GB)
    deduplicates its events in memory with 32 where 4 fell back to sorting and spilled; a daily run, whose shuffles
    are small, is 1-2 s slower with 32 than with 4 even after adaptive execution merged them (docs/benchmarks.md)."""
    return max(min(FEWEST_SHUFFLE_PARTITIONS, most), min(most, -(-raw_bytes // RAW_BYTES_PER_SHUFFLE_PARTITION)))


class SparkEngine:
    name = "spark"
    concurrent = True

    def __init__(self, settings: Settings, spark=None, short_run: bool = False):
        self.spark = spark or get_spark("churn_features", settings, short_run=short_run)
        self.most_shuffle_partitions = int(self.spark.conf.get(SHUFFLE_PARTITIONS))

    def size_for(self, raw_bytes: int) -> dict:
        partitions = shuffle_partitions(raw_bytes, self.most_shuffle_partitions)
        self.spark.conf.set(SHUFFLE_PARTITIONS, str(partitions))
        return {"shuffle_partitions": partitions}

    def register_parquet(self, view: str, files: list[str], columns: dict[str, str],
                         hive_root: str | None = None) -> None:
        reader = self.spark.read
        if set(columns.values()) <= SPARK_EXACT_TYPES:
            # the union the contract read from the footers: no schema-inference job over the files
            reader = reader.schema(", ".join(f"`{name}` {kind}" for name, kind in columns.items())
                                   + (", dt date" if hive_root else ""))
        else:  # a type the contract names loosely (int, double): Spark reads the footers itself;
            # mergeSchema keeps an optional column present in some files only (NULL elsewhere)
            reader = reader.option("mergeSchema", "true")
        if hive_root:
            reader = reader.option("basePath", spark_uri(hive_root))
        df = reader.parquet(*[spark_uri(p) for p in files])
        df.createOrReplaceTempView(view)

    def register_arrow(self, view: str, rows) -> None:
        self.spark.createDataFrame(rows).createOrReplaceTempView(view)

    def create_view(self, view: str, sql: str, params: dict | None = None, materialize: bool = False,
                    read_whole_next: bool = False) -> None:
        df = self.spark.sql(sql, args=used_params(sql, params))
        if materialize:
            df = df.cache()
        if materialize and not read_whole_next:  # cached now, so the joins that use it are planned from its real size
            df.count()
        df.createOrReplaceTempView(view)

    def rows(self, sql: str, params: dict | None = None) -> list[dict]:
        return [r.asDict() for r in self.spark.sql(sql, args=used_params(sql, params)).collect()]

    def stage(self, sql: str, stage_dir: str) -> None:
        (
            self.spark.sql(sql)
            .repartition(*STAGE_PARTITIONS)
            .sortWithinPartitions(*STAGE_PARTITIONS, "instance_id")
            .write.mode("overwrite")
            .partitionBy(*STAGE_PARTITIONS)
            .parquet(spark_uri(stage_dir))
        )

    def release(self) -> None:
        self.spark.catalog.clearCache()

    def close(self) -> None:
        self.release()
        self.spark.conf.set(SHUFFLE_PARTITIONS, str(self.most_shuffle_partitions))  # a session it was given


class DuckDBEngine:
    name = "duckdb"
    concurrent = False  # one connection runs one query at a time (it uses every core for it)

    def __init__(self, settings: Settings):
        from churn.core.duck import connect

        self.con = connect(settings, s3=settings.warehouse.startswith("s3://"))

    def size_for(self, raw_bytes: int) -> dict:
        return {}  # DuckDB sizes each query from the machine (threads, memory_limit)

    @staticmethod
    def translate(sql: str) -> str:
        import sqlglot

        return sqlglot.transpile(sql, read="spark", write="duckdb")[0]

    def _execute(self, sql: str, params: dict | None = None):
        return self.con.execute(self.translate(sql), used_params(sql, params) or None)

    def register_parquet(self, view: str, files: list[str], columns: dict[str, str],
                         hive_root: str | None = None) -> None:
        from churn.core.duck import quote

        files = "[" + ", ".join(quote(p) for p in files) + "]"
        options = "hive_partitioning = true, hive_types = {'dt': DATE}" if hive_root else "hive_partitioning = false"
        self.con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet({files}, {options}, "
                         "union_by_name = true)")

    def register_arrow(self, view: str, rows) -> None:
        self.con.register(f"{view}_arrow", rows)  # a scan of the Arrow table, kept by the connection
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {view} AS SELECT * FROM {view}_arrow")
        self.con.unregister(f"{view}_arrow")

    def create_view(self, view: str, sql: str, params: dict | None = None, materialize: bool = False,
                    read_whole_next: bool = False) -> None:
        params = used_params(sql, params) or None
        # DuckDB cannot prepare a view's parameters: a parameterized view is made a table (the plan's are small)
        kind = "TEMP TABLE" if materialize or params else "TEMP VIEW"
        self.con.execute(f"CREATE OR REPLACE {kind} {view} AS {self.translate(sql)}", params)

    def rows(self, sql: str, params: dict | None = None) -> list[dict]:
        cursor = self._execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def stage(self, sql: str, stage_dir: str) -> None:
        import os

        from churn.core.duck import quote

        if "://" not in stage_dir:
            os.makedirs(stage_dir, exist_ok=True)  # DuckDB creates the last folder only
        self.con.execute(f"COPY ({self.translate(sql)} ORDER BY {', '.join(STAGE_PARTITIONS)}, instance_id) TO "
                         f"{quote(stage_dir)} (FORMAT parquet, PARTITION_BY ({', '.join(STAGE_PARTITIONS)}), "
                         "OVERWRITE_OR_IGNORE true)")

    def release(self) -> None:
        for (name,) in self.con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall():
            self.con.execute(f'DROP TABLE IF EXISTS "{name}"')

    def close(self) -> None:
        self.con.close()


def make_engine(settings: Settings, spark=None, short_run: bool = False) -> Engine:
    """The engine the setting ``feature_engine`` names (``spark`` or ``duckdb``); ``short_run``: the run reads
    little (setting ``spark_short_run_mb``), so a local JVM is started for a short life (``get_spark``)."""
    if settings.feature_engine == "duckdb":
        return DuckDBEngine(settings)
    return SparkEngine(settings, spark, short_run=short_run)
