"""Spark runner for the week-1 feature tables ``instances_w1`` and ``instances_modeling``.

The logic is the SQL in ``sql/features/``; this module only reads the raw partitions a date range
needs, checks them against the contract, runs the SQL and publishes one partition per day.
Runs in-process (``churn features``) and under ``spark-submit etl_jobs/build_features.py`` alike.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from datetime import date, timedelta

import typer

from churn import storage
from churn.contract import EVALUATIONS_TABLE, EVENTS_TABLE, DataContractError
from churn.feature_config import FEATURE_TABLES, FeatureConfig, load_feature_config
from churn.settings import Settings, get_settings, join
from churn.spark import get_spark, spark_uri
from churn.sql_templates import render
from churn.warehouse import staging_path, write_partition

log = logging.getLogger("churn.features")

EVENT_TYPES = {
    "instance_id": "string",
    "user_id": "string",
    "event_time": "timestamp",
    "event_type": "string",
    "platform": "string",
}
EVALUATION_TYPES = {"instance_id": "string", "eval_start_date": "date", "converted_date": "date"}
QUALITY_ERRORS = {
    "null_keys": ("instance_id/user_id/event_time/event_type", "null key values",
                  "instance_id IS NULL OR user_id IS NULL OR event_time IS NULL OR event_type IS NULL"),
    "outside_partition": ("event_time", "event_time outside its dt partition (wrong partition or in the future)",
                          "CAST(to_date(event_time) AS STRING) <> dt"),
}


@dataclass(frozen=True)
class FeatureTable:
    """A feature table is a cohort (who, which dt) plus the shared week-1 feature SQL."""

    name: str
    cohort_sql: str
    with_label: bool

    def offset_days(self, settings: Settings) -> int:
        """Days between an instance's eval_start_date and the dt partition it lands in."""
        return settings.label_window_days if self.with_label else settings.first_week_days


TABLES = {
    "instances_w1": FeatureTable("instances_w1", "features/cohort_instances_w1.sql", with_label=False),
    "instances_modeling": FeatureTable("instances_modeling", "features/cohort_instances_modeling.sql", with_label=True),
}


def days_between(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def event_days_needed(table: FeatureTable, start: date, end: date, settings: Settings) -> list[date]:
    """The only event partitions a build of dt in [start, end] reads: the cohorts' first weeks."""
    offset = table.offset_days(settings)
    return days_between(start - timedelta(days=offset), end - timedelta(days=offset - settings.first_week_days + 1))


def build_features(
    start: date,
    end: date,
    settings: Settings | None = None,
    tables: tuple[str, ...] | list[str] = FEATURE_TABLES,
    spark=None,
) -> dict:
    """Build and publish partitions dt in [start, end] of the given feature tables in one Spark run.

    Week-1 features are computed once for the union of the tables' cohorts from one read of the
    event partitions they need. Everything is staged and checked before the first partition is
    published, so a failed run publishes nothing; a rerun replaces exactly the partitions of its range.
    """
    settings = settings or get_settings()
    config = load_feature_config(settings)
    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise ValueError(f"unknown feature table(s) {unknown}; choose from {sorted(TABLES)}")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    started = time.perf_counter()
    spark = spark or get_spark("churn_features", settings)
    _progress(started, "Spark session ready")
    evaluations = _load_evaluations(spark, settings, config)
    evaluations.createOrReplaceTempView("evaluations")
    _progress(started, "evaluations checked")
    chosen = [TABLES[name] for name in tables]
    cohorts = []
    for table in chosen:
        offset = table.offset_days(settings)
        params = {
            "cohort_start": start - timedelta(days=offset),
            "cohort_end": end - timedelta(days=offset),
            "first_week_days": settings.first_week_days,
            "label_window_days": settings.label_window_days,
        }
        cohort = spark.sql(render(table.cohort_sql), args=_used(params, table.cohort_sql)).cache()
        cohort.createOrReplaceTempView(f"cohort_{table.name}")
        cohorts.append(cohort.select("instance_id", "eval_start_date"))
    union = cohorts[0]
    for other in cohorts[1:]:
        union = union.unionByName(other)
    union.distinct().cache().createOrReplaceTempView("cohort")
    event_days = sorted({d for table in chosen for d in event_days_needed(table, start, end, settings)})
    _load_events(spark, settings, event_days).createOrReplaceTempView("events")
    quality = _check_events(spark, config, settings)
    _progress(started, f"{quality['events_read']} events in {len(event_days)} partitions checked")
    week1 = spark.sql(
        render(
            "features/week1_features.sql",
            count_features=config.count_features,
            mobile_platforms=config.mobile_platforms,
            key_event_types=config.key_event_types,
        ),
        args={"first_week_days": settings.first_week_days},
    ).cache()
    week1.createOrReplaceTempView("week1_features")
    week1_columns = [name for name, _ in config.week1_columns()]
    staged: dict[str, str] = {}
    summary: dict = {"start": start.isoformat(), "end": end.isoformat(), "event_partitions": len(event_days),
                     "event_days": [event_days[0].isoformat(), event_days[-1].isoformat()], "quality": quality,
                     "tables": {}}
    try:
        for table in chosen:
            sql = render("features/feature_table.sql", with_label=table.with_label,
                         week1_columns=week1_columns, attribute_features=config.attribute_features,
                         cohort_view=f"cohort_{table.name}")
            stage = staging_path(settings.feature_table_path(table.name))
            staged[table.name] = stage
            (
                spark.sql(sql)
                .repartition("dt")
                .sortWithinPartitions("dt", "instance_id")
                .write.mode("overwrite")
                .partitionBy("dt")
                .parquet(spark_uri(stage))
            )
            _progress(started, f"{table.name} staged")
        for table in chosen:
            partitions = _publish_range(spark, table.name, staged.pop(table.name), start, end, settings)
            summary["tables"][table.name] = {"partitions": partitions, "quality": quality}
            _progress(started, f"{table.name}: {len(partitions)} partitions published")
    finally:
        for leftover in staged.values():
            _remove_quietly(leftover, settings)
        spark.catalog.clearCache()
    summary["seconds"] = round(time.perf_counter() - started, 1)
    log.info("features %s..%s built in %.1f s", start, end, summary["seconds"])
    return summary


def _progress(started: float, message: str) -> None:
    log.info("[%5.1f s] %s", time.perf_counter() - started, message)


def _publish_range(spark, name: str, stage: str, start: date, end: date, settings: Settings) -> list[dict]:
    from pyspark.sql.pandas.types import to_arrow_schema

    table_path = settings.feature_table_path(name)
    schema = to_arrow_schema(spark.read.parquet(spark_uri(stage)).drop("dt").schema) if _has_parquet(stage, settings) else None
    published = []
    for day in days_between(start, end):
        day_stage = join(stage, f"dt={day.isoformat()}")
        if storage.exists(day_stage, settings):
            result = write_partition(table_path, day, _read_staged_day(day_stage, settings), settings)
        else:
            import pyarrow as pa

            log.warning("%s dt=%s: no instances in this cohort, publishing an empty partition", name, day)
            empty_schema = schema or _arrow_schema_from_config(name, settings)
            result = write_partition(table_path, day, pa.Table.from_pylist([], schema=empty_schema), settings)
        published.append(result.as_xcom() | {"dt": day.isoformat()})
    _remove_quietly(stage, settings)
    return published


def _read_staged_day(day_stage: str, settings: Settings):
    """One day's Spark output as one Arrow table, rows in the order Spark sorted them.

    Republishing through pyarrow makes reruns byte-identical: parquet-mr lists column-chunk
    encodings in an order that varies between JVMs, so its files differ even with equal rows.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs = storage.filesystem(day_stage, settings)
    files = sorted(p for p in fs.find(storage.strip_scheme(day_stage)) if p.endswith(".parquet"))
    tables = []
    for path in files:
        with fs.open(path, "rb") as handle:
            tables.append(pq.read_table(handle))
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def _arrow_schema_from_config(name: str, settings: Settings):
    import pyarrow as pa

    types = {"string": pa.string(), "date": pa.date32(), "int": pa.int32(), "bigint": pa.int64(), "double": pa.float64()}
    columns = load_feature_config(settings).table_columns(name)
    return pa.schema([pa.field(column, types[kind]) for column, kind in columns])


def _has_parquet(path: str, settings: Settings) -> bool:
    fs = storage.filesystem(path, settings)
    bare = storage.strip_scheme(path)
    return fs.exists(bare) and any(p.endswith(".parquet") for p in fs.find(bare))


def _remove_quietly(path: str, settings: Settings) -> None:
    fs = storage.filesystem(path, settings)
    bare = storage.strip_scheme(path)
    if fs.exists(bare):
        fs.rm(bare, recursive=True)


def _used(params: dict, sql_file: str) -> dict:
    text = render(sql_file)
    return {k: v for k, v in params.items() if f":{k}" in text}


def _check_types(df, expected: dict[str, str], table: str) -> None:
    actual = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    for column, kind in expected.items():
        if column not in actual:
            raise DataContractError(table, column, f"required column is missing (found columns: {sorted(actual)})")
        found = actual[column]
        compatible = found == kind or (kind == "timestamp" and found == "timestamp_ntz") or found == "void"
        if not compatible:
            raise DataContractError(table, column, f"expected type {kind}, found {found}")


def _load_evaluations(spark, settings: Settings, config: FeatureConfig):
    from pyspark.sql import functions as F

    path = settings.evaluations_path
    if not _has_parquet(path, settings):
        raise DataContractError(EVALUATIONS_TABLE, "*", f"no Parquet files at {path} (setting CHURN_RAW_EVALUATIONS)")
    df = spark.read.parquet(spark_uri(path))
    _check_types(df, EVALUATION_TYPES, EVALUATIONS_TABLE)
    attributes = {}  # evaluations column -> expression; two features may rank the same column
    for attribute in config.attribute_features:
        if attribute.column in df.columns:
            attributes[attribute.column] = F.col(attribute.column).cast("string").alias(attribute.column)
        else:
            log.warning("evaluations.%s is missing: feature %s is NULL for every instance (configured in %s)",
                        attribute.column, attribute.name, config.source)
            attributes[attribute.column] = F.lit(None).cast("string").alias(attribute.column)
    df = df.select(
        "instance_id", "eval_start_date", F.col("converted_date").cast("date").alias("converted_date"),
        *attributes.values(),
    )
    unranked = {
        a.name: F.sum((F.col(a.column).isNotNull() & ~F.col(a.column).isin(list(a.ranks))).cast("int")).alias(a.name)
        for a in config.attribute_features
    }
    stats = df.agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct("instance_id").alias("ids"),
        F.sum(F.col("instance_id").isNull().cast("int")).alias("null_ids"),
        F.sum(F.col("eval_start_date").isNull().cast("int")).alias("null_starts"),
        *unranked.values(),
    ).first()
    for name in unranked:
        if stats[name]:
            log.warning("evaluations: %d rows have a value outside the ranks of feature %s; it is NULL for them",
                        stats[name], name)
    if stats["null_ids"] or stats["null_starts"]:
        column = "instance_id" if stats["null_ids"] else "eval_start_date"
        bad = df.where(F.col(column).isNull()).limit(5).collect()
        raise DataContractError(
            EVALUATIONS_TABLE, column, f"{stats['null_ids'] or stats['null_starts']} rows with null {column}",
            [r.asDict() for r in bad],
        )
    non_null_ids = stats["rows"] - stats["null_ids"]
    if stats["ids"] != non_null_ids:
        dupes = df.groupBy("instance_id").count().where("count > 1").orderBy("instance_id").limit(5).collect()
        raise DataContractError(
            EVALUATIONS_TABLE, "instance_id", f"{non_null_ids - stats['ids']} duplicate rows (instance_id must be unique)",
            [f"{r['instance_id']} x{r['count']}" for r in dupes],
        )
    return df


def _load_events(spark, settings: Settings, days: list[date]):
    from pyspark.sql import functions as F

    root = settings.events_path
    present = set(storage.list_dir(root, settings))
    missing = [d.isoformat() for d in days if f"dt={d.isoformat()}" not in present]
    if missing:
        raise DataContractError(
            EVENTS_TABLE, "dt",
            f"{len(missing)} needed partitions have not landed under {root} (a day without events must still "
            "be an empty partition)", missing,
        )
    paths = [spark_uri(join(root, f"dt={d.isoformat()}")) for d in days]
    df = spark.read.option("basePath", spark_uri(root)).parquet(*paths)
    _check_types(df, EVENT_TYPES, EVENTS_TABLE)
    received = F.col("received_at").cast("timestamp") if "received_at" in df.columns else F.lit(None).cast("timestamp")
    return df.select(
        "instance_id", "user_id", F.col("event_time").cast("timestamp").alias("event_time"), "event_type", "platform",
        received.alias("received_at"), F.col("dt").cast("string").alias("dt"),
    )


def _check_events(spark, config: FeatureConfig, settings: Settings) -> dict:
    sql = render("features/event_quality.sql", known_event_types=config.known_event_types)
    row = spark.sql(sql, args={"first_week_days": settings.first_week_days}).first().asDict()
    counts = {k: int(v or 0) for k, v in row.items()}
    for key, (column, problem, predicate) in QUALITY_ERRORS.items():
        if counts[key]:
            examples = spark.sql(f"SELECT * FROM events WHERE {predicate} LIMIT 5").collect()
            raise DataContractError(EVENTS_TABLE, column, f"{counts[key]} rows with {problem}", [r.asDict() for r in examples])
    if counts["unknown_event_type"]:
        top = spark.sql(
            "SELECT event_type, COUNT(*) AS n FROM events WHERE event_type NOT IN ("
            + ", ".join("'" + t.replace("'", "''") + "'" for t in sorted(config.known_event_types))
            + ") GROUP BY event_type ORDER BY n DESC LIMIT 5"
        ).collect()
        log.warning(
            "events: %d events of types outside %s (counted in w1_events only): %s",
            counts["unknown_event_type"], config.source, ", ".join(f"{r['event_type']}={r['n']}" for r in top),
        )
    if counts["unknown_instance"]:
        log.warning("events: %d events of instances not in evaluations were dropped", counts["unknown_instance"])
    return counts


# ---- command line -----------------------------------------------------------------------------

def _resolve_range(ds: date | None, start: date | None, end: date | None) -> tuple[date, date]:
    if ds and (start or end):
        raise ValueError("give either --ds or --start/--end, not both")
    if ds:
        return ds, ds
    if not (start and end):
        raise ValueError("give --ds D, or --start A and --end B")
    return start, end


def features_command(
    ds: str = typer.Option(None, "--ds", help="build one partition date YYYY-MM-DD"),
    start: str = typer.Option(None, "--start", help="first partition date of a range"),
    end: str = typer.Option(None, "--end", help="last partition date of a range (inclusive)"),
    table: list[str] = typer.Option(list(FEATURE_TABLES), "--table", help="table(s) to build"),
) -> None:
    """Build instances_w1 and instances_modeling for one day or a range, in one Spark run."""
    import json

    parse = lambda v: date.fromisoformat(v) if v else None  # noqa: E731
    try:
        first, last = _resolve_range(parse(ds), parse(start), parse(end))
        summary = build_features(first, last, tables=tuple(table))
    except (ValueError, DataContractError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    compact = {
        name: {"partitions": len(t["partitions"]), "rows": sum(p["rows"] for p in t["partitions"]), "quality": t["quality"]}
        for name, t in summary["tables"].items()
    }
    typer.echo(json.dumps({"start": summary["start"], "end": summary["end"], "seconds": summary["seconds"], **compact}, indent=1))


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``spark-submit etl_jobs/build_features.py --ds D`` / ``python -m etl_jobs.build_features``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ds", type=date.fromisoformat)
    parser.add_argument("--start", type=date.fromisoformat)
    parser.add_argument("--end", type=date.fromisoformat)
    parser.add_argument("--table", action="append", choices=sorted(TABLES))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        first, last = _resolve_range(args.ds, args.start, args.end)
    except ValueError as exc:
        parser.error(str(exc))
    build_features(first, last, tables=tuple(args.table or FEATURE_TABLES))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
