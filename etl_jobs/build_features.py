"""The week-1 feature job: ``instances_w1`` and ``instances_modeling`` for a day or a range.

The logic is SQL (``sql/features/``). This module is the step plan around it — read the raw partitions
a range needs, check them against the contract, build the cohorts, compute week-1 features once for
all of them, stage each table, publish one partition per day — run by an engine (``churn.etl_jobs.engines``:
Spark or DuckDB, setting ``feature_engine``). Runs in-process (``churn features``, the DAG) and under
``spark-submit etl_jobs/build_features.py`` (EMR) alike.
"""

from __future__ import annotations

import argparse
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from churn.core import contract, storage
from churn.core.contract import EVALUATIONS_TABLE, EVENTS_TABLE, DataContractError, unreadable_file
from churn.core.dates import ISO_DAY, nearest_days
from churn.core.dates import days as days_between
from churn.core.feature_config import FeatureConfig, load_feature_config
from churn.core.settings import Settings, join
from churn.core.sql_templates import render, sql_list
from churn.core.tables import EVALUATIONS, EVENTS, FEATURE_TABLES, Table, table
from churn.core.warehouse import staging_path, write_partitions
from churn.etl_jobs.engines import Engine, make_engine

log = logging.getLogger("churn.features")

# the required event columns and their contract types, as the engines register them (one declaration: the contract)
EVENT_TYPES = {f.name: contract.type_name(f.type) for f in contract.EVENTS_SCHEMA}
MICROS_PER_DAY = 86_400_000_000
# event_time outside the UTC day of its partition (dt: a DATE), in integer microseconds: exact, and on Spark no time-zone
# conversion per event, which to_date(event_time) is
OUTSIDE_PARTITION = (f"unix_micros(event_time) < unix_date(dt) * {MICROS_PER_DAY} "
                     f"OR unix_micros(event_time) >= (unix_date(dt) + 1) * {MICROS_PER_DAY}")
# (counter in event_quality.sql, column named in the error, what is wrong, predicate that picks the rows shown)
QUALITY_ERRORS = {
    "null_keys": ("instance_id/user_id/event_time/event_type", "null key values",
                  "instance_id IS NULL OR user_id IS NULL OR event_time IS NULL OR event_type IS NULL"),
    "outside_partition": ("event_time", "event_time outside its dt partition (wrong partition or in the future)",
                          OUTSIDE_PARTITION),
}
EXAMPLES = 5
# the checks' counts of the cohorts' events, per instance in week1_features.sql, added up by event_quality.sql
CHECK_COUNTERS = ("cohort_events", "cohort_rows", "null_keys", "outside_partition", "cohort_before_eval_start",
                  "cohort_received_late", "unknown_event_type")


def event_days_needed(t: Table, start: date, end: date, settings: Settings) -> list[date]:
    """The only event partitions a build of dt in [start, end] reads: the cohorts' first weeks."""
    offset = timedelta(days=t.cohort_offset_days(settings))
    return first_weeks(start - offset, end - offset, settings)


def first_weeks(first: date, last: date, settings: Settings) -> list[date]:
    """The event days of the first weeks of the trials that started in [first, last]."""
    return days_between(first, last + timedelta(days=settings.first_week_days - 1))


def chunk_event_days(chosen: list[Table], start: date, end: date, settings: Settings) -> list[date]:
    """Every event partition a chunk of these tables reads, once."""
    return sorted({d for t in chosen for d in event_days_needed(t, start, end, settings)})


def chunk_ranges(start: date, end: date, size: int) -> list[tuple[date, date]]:
    """[start, end] cut into consecutive ranges of ``size`` days (the last one may be shorter)."""
    out, first = [], start
    while first <= end:
        last = min(end, first + timedelta(days=size - 1))
        out.append((first, last))
        first = last + timedelta(days=1)
    return out


def build_features(
    start: date,
    end: date,
    settings: Settings,
    tables: tuple[str, ...] | list[str] = FEATURE_TABLES,
    spark=None,
    engine: Engine | None = None,
    resume: bool = True,
) -> dict:
    """Build and publish partitions dt in [start, end] of the given feature tables in one engine run.

    The range is built in chunks of ``feature_chunk_days`` days (shorter when one would read more than
    ``feature_chunk_max_mb`` of raw files: :func:`plan_chunks`), one after the other, so memory is bounded
    by a chunk whatever the range's length. Within a chunk, week-1 features are computed once for the union
    of the tables' cohorts from one read of the event partitions they need, and everything is staged and
    checked before the chunk's partitions are published in one commit per table: a failed chunk publishes
    nothing. Each commit records the fingerprint of the chunk's inputs (raw files, configuration, code);
    with ``resume``, a rerun of a multi-chunk range keeps the chunks already committed with the same inputs
    and builds from the first one that is not (a crash costs one chunk, not the range). A single-chunk run
    (a day) always rebuilds.
    """
    config = load_feature_config(settings)
    unknown = [t for t in tables if t not in FEATURE_TABLES]
    if unknown:
        raise ValueError(f"unknown feature table(s) {unknown}; choose from {sorted(FEATURE_TABLES)}")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    started = time.perf_counter()
    chosen = [table(name) for name in tables]
    listed: dict[str, list[dict]] = {}  # the raw folders' listings: made once, fingerprinted by the chunks' keys
    chunks, inputs = plan_chunks(start, end, chosen, settings, config, listed)
    largest_mb = max(read for _, read in inputs) / 2**20
    owned = engine is None
    # the first chunk's published week-1 features are read while the engine starts (a local JVM: seconds), off a
    # daily run's critical path; the engine starts in this thread (a Spark session is the active one of its thread)
    prefetch = ThreadPoolExecutor(1)
    try:
        first_reusable = prefetch.submit(_published_week1, chosen, *chunks[0], settings, config, listed) \
            if resume else None
        engine = engine or make_engine(settings, spark, short_run=largest_mb < settings.spark_short_run_mb)
    finally:
        prefetch.shutdown(wait=False)  # a read under way finishes; its result is taken by the first chunk
    _progress(started, f"{engine.name} engine ready" + (f" (master {engine.spark.sparkContext.master})"
                                                          if engine.name == "spark" else "")
              + f"; the largest chunk reads {largest_mb:,.0f} MB of raw files")
    # without resume, instances_modeling takes week-1 features only from the instances_w1 days this run published
    scored_by_this_run: set[date] | None = None if resume else set()
    summary: dict = {"start": start.isoformat(), "end": end.isoformat(), "engine": engine.name,
                     "event_partitions": 0, "quality": {}, "tables": {t.name: {"partitions": []} for t in chosen},
                     "chunks": []}
    try:
        for number, ((first, last), (key, read)) in enumerate(zip(chunks, inputs, strict=True), 1):
            what = f"chunk {number}/{len(chunks)} {first}..{last}" if len(chunks) > 1 else f"{first}..{last}"
            kept = committed_with(chosen, first, last, key, settings) if resume and len(chunks) > 1 else None
            if kept is not None:
                _progress(started, f"{what}: already committed with the same inputs, kept")
                for name, partitions in kept.items():
                    summary["tables"][name]["partitions"] += partitions
                summary["chunks"].append({"start": first.isoformat(), "end": last.isoformat(), "status": "kept"})
                continue
            sized = engine.size_for(read)
            if sized:
                _progress(started, f"{what}: reads {read / 2**20:,.0f} MB of raw files; "
                                   + ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in sized.items()))
            try:
                built = _build_chunk(first, last, chosen, settings, config, engine, started, key, what, listed,
                                     taking_from=scored_by_this_run, reusable=first_reusable if number == 1 else None)
            except Exception as exc:
                damaged = unreadable_file(exc) or (_undecodable_input(listed, settings) if _from_engine(exc) else None)
                if damaged is None:
                    raise
                raise damaged from None
            if scored_by_this_run is not None:
                scored_by_this_run |= {date.fromisoformat(p["dt"]) for p in built["tables"].get("instances_w1", [])}
            for name, partitions in built["tables"].items():
                summary["tables"][name]["partitions"] += partitions
            for counter, value in built["quality"].items():
                summary["quality"][counter] = summary["quality"].get(counter, 0) + value
            summary["event_partitions"] += built["event_partitions"]
            summary["chunks"].append({"start": first.isoformat(), "end": last.isoformat(), "status": "built",
                                      "week1_from_instances_w1": built["week1_from_instances_w1"], **sized})
            engine.release()  # the next chunk starts with the memory this one had
    finally:
        if owned:
            engine.close()
    summary["seconds"] = round(time.perf_counter() - started, 1)
    log.info("features %s..%s built in %.1f s (%s, %d chunk(s), %d kept)", start, end, summary["seconds"], engine.name,
             len(chunks), sum(c["status"] == "kept" for c in summary["chunks"]))
    return summary


def plan_chunks(start: date, end: date, chosen: list[Table], settings: Settings, config: FeatureConfig,
                listed: dict[str, list[dict]] | None = None) -> tuple[list[tuple[date, date]], list[tuple[str, int]]]:
    """The range's chunks and their inputs: chunks of ``feature_chunk_days``, halved (down to a day) while one
    would read more than ``feature_chunk_max_mb`` of raw files. Memory and spill follow the raw bytes a chunk
    reads, not its days: at 50k trials a day a 14-day chunk reads 8.6 GB, and DuckDB's spill of it filled the disk."""
    size = settings.feature_chunk_days
    listed = {} if listed is None else listed  # each folder listed once, whatever the chunks that read it
    while True:
        chunks = chunk_ranges(start, end, size)
        inputs = [chunk_inputs(first, last, chosen, settings, config, listed) for first, last in chunks]
        largest = max(read for _, read in inputs)
        if largest <= settings.feature_chunk_max_mb * 2**20 or size == 1:
            if size < settings.feature_chunk_days:
                log.info("chunks of %d days (not %d): a longer chunk would read more than %d MB of raw files "
                         "(setting feature_chunk_max_mb)", size, settings.feature_chunk_days,
                         settings.feature_chunk_max_mb)
            return chunks, inputs
        size = max(1, min(size, (end - start).days + 1) // 2)


INPUTS_PROPERTY = "churn.inputs"  # snapshot property: the fingerprint of the inputs a chunk was built from


def chunk_inputs(start: date, end: date, chosen: list[Table], settings: Settings, config: FeatureConfig,
                 listed: dict[str, list[dict]] | None = None) -> tuple[str, int]:
    """Fingerprint of everything a chunk's output depends on — the raw files it reads (name, size, version),
    the feature configuration, the SQL and this module, the windows: equal keys give equal partitions — and
    the bytes of those raw files (what sizes the engine's start). ``listed``: folder listings already made."""
    digest = _definition_digest(settings, config, {"start": start.isoformat(), "end": end.isoformat(),
                                                   "tables": [t.name for t in chosen]})
    event_days = chunk_event_days(chosen, start, end, settings)
    read = _digest_files(digest, [EVALUATIONS.location(settings)] + _event_folders(event_days, settings), settings,
                         listed)
    return digest.hexdigest()[:32], read


def week1_inputs(cohort_day: date, settings: Settings, config: FeatureConfig,
                 listed: dict[str, list[dict]] | None = None) -> str:
    """Fingerprint of what the week-1 features of the trials that started on ``cohort_day`` are computed from: the
    feature definition (configuration, SQL, this module, the windows) and the event files of their first week.
    instances_w1 records it for each day it publishes; instances_modeling takes its features from a day whose
    fingerprint is still the same (:func:`_published_week1`)."""
    digest = _definition_digest(settings, config, {"week1_of": cohort_day.isoformat()})
    week = days_between(cohort_day, cohort_day + timedelta(days=settings.first_week_days - 1))
    _digest_files(digest, _event_folders(week, settings), settings, listed)
    return digest.hexdigest()[:32]


def _definition_digest(settings: Settings, config: FeatureConfig, what: dict):
    import hashlib
    import json
    from dataclasses import asdict
    from pathlib import Path

    from churn.core.settings import SQL_DIR

    digest = hashlib.sha256(json.dumps({
        **what, "first_week_days": settings.first_week_days, "label_window_days": settings.label_window_days,
        "config": asdict(config) | {"source": None},
    }, sort_keys=True, default=str).encode())
    for code in sorted((Path(SQL_DIR) / "features").glob("*.sql")) + [Path(__file__)]:
        digest.update(code.read_bytes())
    return digest


def _from_engine(exc: BaseException) -> bool:
    """An error raised inside DuckDB or the JVM (not by this code), which a damaged input file can cause."""
    return type(exc).__module__.split(".")[0].lstrip("_") in ("duckdb", "py4j", "pyspark")


def _undecodable_input(listed: dict[str, list[dict]], settings: Settings):
    """The first raw file of this run that does not decode, as a contract error; None if all decode."""
    paths = sorted(info["name"] for infos in listed.values() for info in infos if info["name"].endswith(".parquet"))
    return contract.first_undecodable(storage.filesystem(EVENTS.location(settings), settings), paths) if paths else None


def _event_folders(days: list[date], settings: Settings) -> list[str]:
    return [join(EVENTS.location(settings), f"dt={d.isoformat()}") for d in days]


def _digest_files(digest, folders: list[str], settings: Settings, listed: dict[str, list[dict]] | None) -> int:
    """Add each file's name, size and version to ``digest``; the bytes of those files."""
    read = 0
    listed = {} if listed is None else listed
    for folder in folders:
        if folder not in listed:
            listed[folder] = contract.data_file_infos(storage.filesystem(folder, settings), storage.strip_scheme(folder))
        for info in listed[folder]:
            version = info.get("ETag") or info.get("mtime") or info.get("LastModified") or info.get("created")
            digest.update(f"{info['name']}|{info.get('size')}|{version}\n".encode())
            read += int(info.get("size") or 0)
    return read


def committed_with(chosen: list[Table], start: date, end: date, key: str, settings: Settings
                   ) -> dict[str, list[dict]] | None:
    """The chunk's published partitions by table when every day of every table was last written with ``key``;
    None when any was not (never built, built from other inputs, or its snapshot expired)."""
    from churn.core.warehouse import load_table, partition_rows, partition_snapshot

    found: dict[str, list[dict]] = {}
    chunk = days_between(start, end)
    for t in chosen:
        tbl = load_table(table(t.name), settings)
        if tbl is None:
            return None
        snapshots = [partition_snapshot(t.name, day, settings, tbl) for day in chunk]
        if any(s is None or s["properties"].get(INPUTS_PROPERTY) != key for s in snapshots):
            return None
        rows = partition_rows(t.name, chunk, settings, tbl)
        found[t.name] = [{"table": t.name, "dt": day.isoformat(), "rows": rows[day], "snapshot_id": s["snapshot_id"]}
                         for day, s in zip(chunk, snapshots, strict=True)]
    return found


def _build_chunk(start: date, end: date, chosen: list[Table], settings: Settings, config: FeatureConfig,
                 engine: Engine, started: float, key: str, what: str, listed: dict[str, list[dict]],
                 taking_from: set[date] | None = None, reusable: Future | None = None) -> dict:
    """One chunk: read, check, compute, stage, then publish each table's days in one commit.

    ``listed``: the raw folders' listings the chunk's key was computed from (the week-1 fingerprints use them too).
    instances_modeling takes the week-1 features of each cohort day that instances_w1 published from the inputs it
    has now (:func:`_published_week1`, an earlier chunk's commit included); those days' events are not read.
    ``taking_from``: the instances_w1 days it may take them from (None: any; a run without resume: its own).
    ``reusable``: that function's result, when the caller started it already.
    """
    stage = staging_path(settings, "features")
    try:
        cohorts = {t.name: (start - timedelta(days=t.cohort_offset_days(settings)), end - timedelta(days=t.cohort_offset_days(settings)))
                   for t in chosen}  # each table's range of eval_start_date
        # fingerprinted from the listings made before anything is read: a file that changes during the run cannot be
        # recorded as read
        week1_recorded = {day: week1_inputs(day - timedelta(days=settings.first_week_days), settings, config, listed)
                          for day in days_between(start, end)} if table("instances_w1") in chosen else {}
        week1_columns = [name for name, _ in config.week1_columns()]
        summary: dict = {"event_partitions": 0, "quality": {}, "tables": {}}
        with ThreadPoolExecutor(2) as pool:  # instances_w1's metadata and rows are read while the engine works
            if reusable is None and (taking_from is None or taking_from):
                reusable = pool.submit(_published_week1, chosen, start, end, settings, config, listed, taking_from)
            footers = _load_evaluations(engine, settings, config, list(cohorts.values()))
            for t in chosen:
                params = {"cohort_start": cohorts[t.name][0], "cohort_end": cohorts[t.name][1],
                          "first_week_days": settings.first_week_days, "label_window_days": settings.label_window_days}
                # a filter of the materialized evaluations: cheap to recompute, sized from them when joined
                engine.create_view(f"cohort_{t.name}", render(t.cohort_sql), params)
            # the checks of evaluations only read: an engine that runs queries side by side (Spark) checks them while
            # it reads the events; nothing is staged before they pass, and their error is the one reported
            checked = _meanwhile(pool, engine, _check_evaluations, engine, config, footers, datetime.now(UTC).date())
            try:
                taken = reusable.result() if reusable else None
                taken_days = set(taken.days) if taken else set()
                summary["week1_from_instances_w1"] = [d.isoformat() for d in sorted(taken_days)]
                if taken:
                    engine.register_arrow("week1_published", taken.rows)
                    _progress(started, f"{what}: instances_modeling takes the week-1 features of {len(taken_days)} "
                                       "cohort days from instances_w1 (published from the same event files, "
                                       "configuration and code)")
                # the trials whose week-1 features are computed here: every cohort's but the days taken
                computed = _day_ranges({d for first, last in cohorts.values() for d in days_between(first, last)}
                                       - taken_days)
                if computed:
                    # every trial whose first week this chunk reads, once. Materialized now, so that the joins to it are
                    # planned from its real size: a 90-day cohort must not be broadcast from the estimate of a small
                    # Parquet file (test_memory_cliff), and the checks of evaluations may not have cached them yet
                    engine.create_view("cohort", render("features/cohort.sql", starts_in=_starts_in(computed)),
                                       {"first_week_days": settings.first_week_days}, materialize=True)
                    event_days = sorted({d for first, last in computed for d in first_weeks(first, last, settings)})
                    received_at, event_footers, event_files = _load_events(engine, settings, event_days)
                    summary["quality"] |= _check_events(engine, config, settings, received_at, event_footers,
                                                        event_files)
                    summary["event_partitions"] = len(event_days)
            except DataContractError:
                checked.result()  # an error in evaluations comes first, as when the checks run one after the other
                raise
            summary["quality"]["future_evaluations"] = checked.result()
        _progress(started, "evaluations checked" + (f"; {summary['quality']['events_read']} events in "
                                                    f"{summary['event_partitions']} partitions checked, their "
                                                    "week-1 features computed" if computed else ""))
        features_views = {t.name: _features_view(t, cohorts[t.name], taken_days) for t in chosen}
        if "week1_taken_and_computed" in features_views.values():  # modeling: days taken, days computed
            columns = ", ".join(["instance_id", *week1_columns])
            engine.create_view("week1_taken_and_computed", f"SELECT {columns} FROM week1_published UNION ALL "
                                                           f"SELECT {columns} FROM week1_features")
        # every table in one query (one job: the week-1 features are read once, for all of them)
        engine.stage("\nUNION ALL\n".join(
            render("features/feature_table.sql", table_name=t.name, with_label=t.labelled,
                   week1_columns=week1_columns, attribute_features=config.attribute_features,
                   cohort_view=f"cohort_{t.name}",
                   features_view=features_views[t.name]) for t in chosen), stage)
        _progress(started, f"{what}: {', '.join(t.name for t in chosen)} staged")
        for t in chosen:
            partitions = _publish_range(t.name, join(stage, f"feature_table={t.name}"), start, end, settings,
                                        {INPUTS_PROPERTY: key}, week1_recorded if t.name == "instances_w1" else None)
            summary["tables"][t.name] = partitions
            _progress(started, f"{what}: {t.name}: {len(partitions)} partitions published")
    finally:
        _remove_quietly(stage, settings)
    return summary


def cohort_events_sql(received_at: str) -> str:
    """The query of the view ``events`` over the views ``events_raw`` and ``cohort``; ``received_at``: its expression
    (:func:`_load_events`)."""
    contract_errors = " OR ".join(f"({predicate})" for _, _, predicate in QUALITY_ERRORS.values())
    return render("features/cohort_events.sql", received_at=received_at, contract_errors=contract_errors,
                  outside_partition=OUTSIDE_PARTITION, micros_per_day=MICROS_PER_DAY)


def week1_features_sql(config: FeatureConfig, settings: Settings) -> str:
    """The query of the view ``week1_features`` (parameter ``:first_week_days``) over the views ``cohort`` and
    ``events``, rendered for this configuration: the features and the checks' counts (:data:`CHECK_COUNTERS`) of each
    instance."""
    return render("features/week1_features.sql", count_features=config.count_features,
                  mobile_platforms=config.mobile_platforms, key_event_types=config.key_event_types,
                  known_event_types=config.known_event_types, check_counters=CHECK_COUNTERS,
                  first_week_days=settings.first_week_days)


def _published_week1(chosen: list[Table], start: date, end: date, settings: Settings, config: FeatureConfig,
                     listed: dict[str, list[dict]], taking_from: set[date] | None = None) -> Week1Taken | None:
    """instances_w1's rows (instance_id and the week-1 columns) of the chunk's modeling cohorts that can give
    instances_modeling their week-1 features, by cohort day; None when no day can (they are computed from the events).

    A modeling cohort (eval_start_date d) is the scoring cohort instances_w1 published at d + first_week_days,
    weeks before its label was known. A day's features are taken from there only when equal by construction to what
    this run would compute: the day was recorded with the fingerprint its inputs have now (:func:`week1_inputs`:
    the same event files, configuration and code), and it holds every trial of the cohort (a trial that reached
    evaluations after instances_w1 was published is not in it). A daily run then reads the first week of one cohort
    instead of two; a range reads, after its first chunk, the first weeks of its scoring cohorts only (the earlier
    chunks published the rest); and the model trains on the features its trials were scored on. ``taking_from``: the
    instances_w1 days that may give them (None: any; a run without resume: those it published). A day whose first
    week this chunk reads anyway (a scoring cohort of the chunk) is computed. Metadata and files only, no engine:
    it runs while the engine starts.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyiceberg.expressions import In

    from churn.core.tables import PARTITION_KEY
    from churn.core.warehouse import day_inputs, load_table

    if table("instances_modeling") not in chosen:
        return None
    first_week = timedelta(days=settings.first_week_days)
    label = timedelta(days=settings.label_window_days)
    scored_here = set(days_between(start - first_week, end - first_week)) if table("instances_w1") in chosen else set()
    cohort_days = [d for d in days_between(start - label, end - label) if d not in scored_here
                   and (taking_from is None or d + first_week in taking_from)]
    w1 = load_table(table("instances_w1"), settings) if cohort_days else None
    if w1 is None:
        return None
    recorded = day_inputs("instances_w1", settings, w1)
    fresh = [d for d in cohort_days if recorded.get(d + first_week) == week1_inputs(d, settings, config, listed)]
    if len(fresh) < len(cohort_days):
        stale = next(d for d in cohort_days if d not in fresh)
        log.info("instances_modeling: week-1 features of %d of %d cohort days computed from the events: instances_w1 "
                 "dt=%s (the first) was not published from the inputs that day has now", len(cohort_days) - len(fresh),
                 len(cohort_days), stale + first_week)
    if not fresh:
        return None
    columns = ["instance_id", *(name for name, _ in config.week1_columns())]
    rows = w1.scan(row_filter=In(PARTITION_KEY, [(d + first_week).isoformat() for d in fresh]),
                   selected_fields=("eval_start_date", *columns)).to_arrow()
    published: dict[date, set] = {}
    for instance_id, day in zip(rows.column("instance_id").to_pylist(), rows.column("eval_start_date").to_pylist(),
                                strict=True):
        published.setdefault(day, set()).add(instance_id)
    missing = {day: len(ids - published.get(day, set()))
               for day, ids in _evaluation_ids(settings, fresh[0], fresh[-1]).items() if day in fresh}
    if any(missing.values()):
        log.info("instances_modeling: week-1 features of %d cohort days computed from the events: %d of their trials "
                 "are not in instances_w1 (they reached evaluations after it was published)",
                 sum(n > 0 for n in missing.values()), sum(missing.values()))
    taken = [d for d in fresh if not missing.get(d)]
    if not taken:
        return None
    if len(taken) < len(fresh):
        rows = rows.filter(pc.is_in(rows.column("eval_start_date"), value_set=pa.array(taken, pa.date32())))
    return Week1Taken(rows.select(columns), taken)


@dataclass(frozen=True)
class Week1Taken:
    """instances_w1's rows of the modeling cohort days in ``days``, to be taken as their week-1 features."""

    rows: object  # pyarrow.Table: instance_id and the week-1 columns
    days: list[date]


def _evaluation_ids(settings: Settings, first: date, last: date) -> dict[date, set]:
    """The instance_ids of evaluations by eval_start_date in [first, last], from two columns of its files (row
    groups pruned by their statistics). A file that cannot be read so breaks the contract: the engine's check of
    evaluations, which runs before this result is taken, names it."""
    import pyarrow.parquet as pq

    path = EVALUATIONS.location(settings)
    fs = storage.filesystem(path, settings)
    ids: dict[date, set] = {}
    for name in contract.data_files(fs, storage.strip_scheme(path)):
        with fs.open(name, "rb") as handle:
            rows = pq.read_table(handle, columns=["instance_id", "eval_start_date"],
                                 filters=[("eval_start_date", ">=", first), ("eval_start_date", "<=", last)])
        for instance_id, day in zip(rows.column("instance_id").to_pylist(), rows.column("eval_start_date").to_pylist(),
                                    strict=True):
            ids.setdefault(day.date() if isinstance(day, datetime) else day, set()).add(instance_id)
    return ids


def _features_view(t: Table, cohort: tuple[date, date], taken_days: set[date]) -> str:
    """The view a table's week-1 features come from: computed from the events, taken from instances_w1 (every
    cohort day taken), or both."""
    days = days_between(*cohort)
    taken = sum(d in taken_days for d in days)
    if not taken:
        return "week1_features"
    return "week1_published" if taken == len(days) else "week1_taken_and_computed"


def _day_ranges(days: set[date] | list[date]) -> list[tuple[date, date]]:
    """Days as the fewest ranges of consecutive days."""
    out: list[tuple[date, date]] = []
    for day in sorted(days):
        if out and out[-1][1] + timedelta(days=1) == day:
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


def _progress(started: float, message: str) -> None:
    log.info("[%5.1f s] %s", time.perf_counter() - started, message)


def _publish_range(name: str, stage: str, start: date, end: date, settings: Settings,
                   properties: dict[str, str] | None = None, day_inputs: dict[date, str] | None = None) -> list[dict]:
    """Publish every day of the range (empty days too) in one Iceberg commit: all days change, or none.

    Rows go through pyarrow in the registry's schema, so both engines publish the same rows in the same order.
    """
    import pyarrow as pa

    t = table(name)
    schema = t.arrow_schema(settings)
    frames = {}
    for day in days_between(start, end):
        day_stage = join(stage, f"dt={day.isoformat()}")
        if storage.exists(day_stage, settings):
            # sorted here, not only by the engine: DuckDB writes a day in several files when it runs in several
            # threads, and their concatenation is not in instance order
            frames[day] = _read_staged_day(day_stage, settings).select(schema.names).cast(schema).sort_by(
                "instance_id")
        else:
            log.warning("%s dt=%s: no instances in this cohort, publishing an empty partition", name, day)
            frames[day] = pa.Table.from_pylist([], schema=schema)
    published = write_partitions(t, frames, settings, properties, day_inputs)
    _remove_quietly(stage, settings)
    return [p.as_xcom() for p in published]


def _read_staged_day(day_stage: str, settings: Settings):
    """One day's staged output as one Arrow table, rows in the order the engine sorted them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs = storage.filesystem(day_stage, settings)
    files = sorted(p for p in fs.find(storage.strip_scheme(day_stage)) if p.endswith(".parquet"))
    tables = []
    for path in files:
        with fs.open(path, "rb") as handle:
            tables.append(pq.read_table(handle))
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def _remove_quietly(path: str, settings: Settings) -> None:
    fs = storage.filesystem(path, settings)
    bare = storage.strip_scheme(path)
    if fs.exists(bare):
        fs.rm(bare, recursive=True)


def _starts_in(cohorts: list[tuple[date, date]]) -> str:
    """The predicate "eval_start_date in one of these ranges" (date literals: the Parquet readers prune on them)."""
    return " OR ".join(f"(eval_start_date BETWEEN DATE '{first}' AND DATE '{last}')" for first, last in cohorts)


def _meanwhile(pool: ThreadPoolExecutor, engine: Engine, function, *args) -> Future:
    """``function(*args)`` beside the caller's next queries when the engine runs queries side by side; else now."""
    if engine.concurrent:
        return pool.submit(function, *args)
    done: Future = Future()
    done.set_result(function(*args))  # an error is raised here, before the next query
    return done


def _load_evaluations(engine: Engine, settings: Settings, config: FeatureConfig, cohorts: list[tuple[date, date]]
                      ) -> dict:
    """The view ``evaluations``: the trials of the run's cohorts (eval_start_date in one of the ranges ``cohorts``),
    to be checked by :func:`_check_evaluations`. Only those: a daily run needs two days of sign-ups, not the month
    between them. Returns what the files' footers say (for the count of sign-ups in the future).

    The date predicate reaches the Parquet reader (Spark's PushedFilters, DuckDB's filter pushdown): a
    daily run reads the row groups of a few days, not the whole history. Keys are checked within these rows.
    """
    path = EVALUATIONS.location(settings)
    fs = storage.filesystem(path, settings)
    files = contract.data_files(fs, storage.strip_scheme(path))
    if not files:
        raise DataContractError(EVALUATIONS_TABLE, "*", f"no Parquet files at {path} (setting CHURN_RAW_EVALUATIONS)")
    footers: dict = {}
    columns = contract.check_files(EVALUATIONS_TABLE, fs, files, contract.EVALUATIONS_SCHEMA,
                                   display=lambda p: storage.with_scheme(path, p), counts=footers,
                                   maxima=("eval_start_date",))
    engine.register_parquet("evaluations_raw", [storage.with_scheme(path, f) for f in files], columns)
    attributes = {}  # evaluations column -> expression; two features may rank the same column
    for attribute in config.attribute_features:
        if attribute.column in columns:
            attributes[attribute.column] = f"CAST({attribute.column} AS STRING) AS {attribute.column}"
        else:
            log.warning("evaluations.%s is missing: feature %s is NULL for every instance (configured in %s)",
                        attribute.column, attribute.name, config.source)
            attributes[attribute.column] = f"CAST(NULL AS STRING) AS {attribute.column}"
    # nulls stay in so the check below reports them (Parquet statistics prune on null counts too)
    engine.create_view(
        "evaluations",
        "SELECT instance_id, eval_start_date, CAST(converted_date AS DATE) AS converted_date"
        + "".join(f", {expression}" for expression in attributes.values())
        + f" FROM evaluations_raw WHERE {_starts_in(cohorts)} OR eval_start_date IS NULL",
        materialize=True, read_whole_next=True,  # by the checks
    )
    return footers


def _check_evaluations(engine: Engine, config: FeatureConfig, footers: dict, today: date) -> int:
    """Check the view ``evaluations`` (keys, labels, ranks); the number of sign-ups after ``today``."""
    unranked = {a.name: f"SUM(CASE WHEN {a.column} IS NOT NULL AND {a.column} NOT IN ({sql_list(a.ranks)}) "
                        "THEN 1 ELSE 0 END)" for a in config.attribute_features}
    stats = engine.rows(
        "SELECT COUNT(*) AS n_rows, COUNT(DISTINCT instance_id) AS ids, "
        "SUM(CASE WHEN instance_id IS NULL THEN 1 ELSE 0 END) AS null_ids, "
        "SUM(CASE WHEN eval_start_date IS NULL THEN 1 ELSE 0 END) AS null_starts, "
        "SUM(CASE WHEN converted_date < eval_start_date THEN 1 ELSE 0 END) AS converted_before_start"
        + "".join(f", {expression} AS {name}" for name, expression in unranked.items())
        + " FROM evaluations"
    )[0]
    stats = {k: int(v or 0) for k, v in stats.items()}
    for name in unranked:
        if stats[name]:
            log.warning("evaluations: %d rows have a value outside the ranks of feature %s; it is NULL for them",
                        stats[name], name)
    if stats["null_ids"] or stats["null_starts"]:
        column = "instance_id" if stats["null_ids"] else "eval_start_date"
        bad = engine.rows(f"SELECT * FROM evaluations WHERE {column} IS NULL ORDER BY instance_id LIMIT {EXAMPLES}")
        raise DataContractError(EVALUATIONS_TABLE, column,
                                f"{stats['null_ids'] or stats['null_starts']} rows with null {column}", bad)
    if stats["converted_before_start"]:
        bad = engine.rows("SELECT instance_id, eval_start_date, converted_date FROM evaluations "
                          f"WHERE converted_date < eval_start_date ORDER BY instance_id LIMIT {EXAMPLES}")
        raise DataContractError(EVALUATIONS_TABLE, "converted_date",
                                f"{stats['converted_before_start']} rows converted before their eval_start_date "
                                "(a conversion before the trial cannot be labelled)", bad)
    latest = footers["max"]["eval_start_date"]  # the footers' statistics: no query when no sign-up is in the future
    latest = latest.date() if isinstance(latest, datetime) else latest
    future = 0 if latest is contract.NO_ROWS or (latest is not None and latest <= today) else int(engine.rows(
        "SELECT COUNT(*) AS n FROM evaluations_raw WHERE eval_start_date > :today", {"today": today})[0]["n"] or 0)
    if future:
        log.warning("evaluations: %d rows start after today (%s); they belong to no cohort until then", future, today)
    non_null_ids = stats["n_rows"] - stats["null_ids"]
    if stats["ids"] != non_null_ids:
        dupes = engine.rows("SELECT instance_id, COUNT(*) AS n FROM evaluations GROUP BY instance_id HAVING COUNT(*) > 1 "
                            f"ORDER BY instance_id LIMIT {EXAMPLES}")
        raise DataContractError(
            EVALUATIONS_TABLE, "instance_id", f"{non_null_ids - stats['ids']} duplicate rows (instance_id must be unique)",
            [f"{r['instance_id']} x{r['n']}" for r in dupes],
        )
    return future


def _load_events(engine: Engine, settings: Settings, days: list[date]) -> tuple[str, dict, list[str]]:
    """The view ``events_raw``: the event partitions of ``days`` (all of which must have landed), every file
    checked against the contract first. Returns the expression of ``received_at`` (NULL when no file has it),
    what the files' footers count (rows, null instance_ids) and the files (paths of the events' filesystem)."""
    root = EVENTS.location(settings)
    present = set(storage.list_dir(root, settings))
    missing = [d.isoformat() for d in days if f"dt={d.isoformat()}" not in present]
    landed = [date.fromisoformat(p[3:]) for p in present if ISO_DAY.fullmatch(p[3:]) and p.startswith("dt=")]
    if missing:
        raise DataContractError(
            EVENTS_TABLE, "dt",
            f"{len(missing)} needed partitions have not landed under {root} (a day without events must still "
            "be an empty partition); landed " + nearest_days([date.fromisoformat(m) for m in missing], landed),
            missing,
        )
    fs = storage.filesystem(root, settings)
    files = [f for d in days for f in contract.data_files(fs, storage.strip_scheme(join(root, f"dt={d.isoformat()}")))]
    footers: dict = {}
    columns = contract.check_files(EVENTS_TABLE, fs, files, contract.EVENTS_SCHEMA, contract.EVENTS_OPTIONAL,
                                   display=lambda p: storage.with_scheme(root, p), counts=footers)
    if files:
        engine.register_parquet("events_raw", [storage.with_scheme(root, f) for f in files], columns, hive_root=root)
    else:  # every needed day landed empty
        engine.create_view("events_raw", "SELECT " + ", ".join(
            f"CAST(NULL AS {kind.upper()}) AS {name}" for name, kind in EVENT_TYPES.items())
            + ", CAST(NULL AS TIMESTAMP) AS received_at, CAST(NULL AS DATE) AS dt WHERE 1 = 0")
    received = "CAST(received_at AS TIMESTAMP)" if "received_at" in columns or not files else "CAST(NULL AS TIMESTAMP)"
    return received, footers, files


def _check_events(engine: Engine, config: FeatureConfig, settings: Settings, received_at: str, footers: dict,
                  files: list[str]) -> dict:
    """Build the views ``events`` (the cohorts' events without exact duplicates) and ``week1_features`` (their
    first-week features and the checks' counts of each instance, materialized: one pass over the events), and check
    the counts: the rows a feature can read, and the rows that break the contract. Nothing is staged before they
    pass. The clean rows outside the cohorts' first weeks (other trials' days, these trials' later days) are only
    counted, from the files' footers; a null instance_id is an error wherever it is. ``files``: the events' files
    (:func:`_load_events`), read again only to name the types outside the configuration, when there are any.
    """
    engine.create_view("events", cohort_events_sql(received_at))
    engine.create_view(
        "week1_features", week1_features_sql(config, settings), {"first_week_days": settings.first_week_days},
        materialize=True,
        # read whole by the checks next (their sums fill Spark's cache), so the staging's joins are planned from its
        # real size (test_memory_cliff)
        read_whole_next=True,
    )
    counts = {k: int(v or 0) for k, v in
              engine.rows(render("features/event_quality.sql", check_counters=CHECK_COUNTERS))[0].items()}
    null_ids = footers.get("nulls", {}).get("instance_id")
    if null_ids is None:  # a file without statistics: count them
        null_ids = int(engine.rows("SELECT COUNT(*) AS n FROM events_raw WHERE instance_id IS NULL")[0]["n"])
    counts["events_read"] = footers.get("rows", 0)
    counts["outside_first_weeks"] = counts["events_read"] - null_ids - counts["cohort_rows"]
    counts["null_keys"] += null_ids
    counts["duplicate_events"] = counts.pop("cohort_rows") - counts.pop("cohort_events")
    for key, (column, problem, predicate) in QUALITY_ERRORS.items():
        if counts[key]:
            examples = engine.rows(  # the rows counted: the cohorts' (or without an instance_id)
                f"SELECT DISTINCT * FROM events_raw WHERE ({predicate}) AND (instance_id IS NULL OR instance_id IN "
                f"(SELECT instance_id FROM cohort)) ORDER BY instance_id, event_time LIMIT {EXAMPLES}")
            examples = [row | {"dt": row["dt"].isoformat()} if row.get("dt") else row for row in examples]  # as its folder
            raise DataContractError(EVENTS_TABLE, column, f"{counts[key]} rows with {problem}", examples)
    if counts["duplicate_events"]:
        log.warning("events: %d exact duplicate events (every column equal) of this run's trials dropped",
                    counts["duplicate_events"])
    if counts["unknown_event_type"]:
        root = EVENTS.location(settings)
        by_type = contract.value_counts(storage.filesystem(root, settings), files, "event_type")
        top = sorted((-n, kind) for kind, n in by_type.items() if kind is not None and kind not in config.known_event_types)
        log.warning(
            "events: %d events of this run's trials have types outside %s (counted in w1_events only); the most "
            "frequent of those types in the files read: %s",
            counts["unknown_event_type"], config.source, ", ".join(f"{kind}={-n}" for n, kind in top[:5]),
        )
    if counts["outside_first_weeks"]:
        log.info("events: %d events read are outside the first week of this run's trials (other trials' days, these "
                 "trials' later days, or instances missing from evaluations); they are only counted",
                 counts["outside_first_weeks"])
    return counts


# ---- spark-submit entry point ------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``spark-submit etl_jobs/build_features.py --ds D`` (EMR) / ``python -m churn.etl_jobs.build_features``.

    Settings come from the job's environment (``CHURN_*``; on EMR Serverless the DAG passes them as
    ``spark.emr-serverless.driverEnv.*``); the Spark session is the one spark-submit configured.
    """
    from churn.core.dates import DateRangeError, parse_range

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ds")
    parser.add_argument("--start")
    parser.add_argument("--end")
    parser.add_argument("--table", action="append", choices=sorted(FEATURE_TABLES))
    parser.add_argument("--no-resume", action="store_true",
                        help="rebuild every chunk of the range, also those committed before with the same inputs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        first, last = parse_range(args.ds, args.start, args.end)
    except DateRangeError as exc:
        parser.error(str(exc))
    build_features(first, last, Settings(), tables=tuple(args.table or FEATURE_TABLES), resume=not args.no_resume)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
