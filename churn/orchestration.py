"""What the Airflow DAGs run: pure functions of a date that return only paths, counts and metrics.

The DAG files in ``dags/`` wire these into tasks; everything here also runs without Airflow (and is
tested that way). Heavy libraries (pyspark, pandas, xgboost) are imported inside the functions so
that parsing a DAG file stays fast. How a run knows its date:

* ``churn_features`` — the logical date of a daily run is the partition ``dt`` it builds; a run
  triggered with params ``{"start": A, "end": B}`` rebuilds [A, B] in one Spark session instead.
* ``churn_scoring`` — asset-triggered runs have no logical date in Airflow 3, so every features run
  puts the days it published into its asset event (``extra = {"dts": [...]}``) and scoring scores
  each ``dt`` found in the events that triggered it.
* ``churn_retrain`` — the logical date is the run date of the retrain.
* ``churn_monitoring`` — like scoring: every scoring run puts the days it scored into its asset
  event, and monitoring checks each of them (outcomes that arrived that day, drift of that day).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta

log = logging.getLogger("churn.orchestration")

# Asset URIs are names, not locations: the same DAGs run on a local folder and on S3.
INSTANCES_W1_URI = "churn://features/instances_w1"
INSTANCES_MODELING_URI = "churn://features/instances_modeling"
PREDICTIONS_URI = "churn://predictions/instances_w1_scored"
MONITORING_URI = "churn://monitoring/model_performance"
MODELS_URI = "churn://models/registry"

FEATURE_TABLES = ("instances_w1", "instances_modeling")


class NothingToScore(Exception):
    """A scoring run found no partition to score (e.g. a range rebuild that did not ask for rescoring)."""


# ---- wiring helpers (no heavy imports) -----------------------------------------------------------


def cron_utc(cron: str):
    """A cron timetable whose logical date is the day a run is for (not the start of an interval).

    No start_date and ``run_immediately=0``: a newly deployed DAG first runs at the next scheduled
    time, never for a time that already passed; earlier days come only from backfills or range runs.
    """
    from airflow.sdk import CronTriggerTimetable

    return CronTriggerTimetable(cron, timezone="UTC", run_immediately=timedelta(0))


def default_task_args(retries: int = 3) -> dict:
    """Retries with exponential backoff (5, 10, 20 min … capped at 1 h) and the failure alert."""
    return {
        "owner": "churn",
        "retries": retries,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(hours=1),
        "on_failure_callback": alert_on_failure,
    }


def spark_runner() -> str:
    from churn.settings import get_settings

    return getattr(get_settings(), "spark_runner", "local") or "local"


# ---- dates -------------------------------------------------------------------------------------


def as_date(value: date | datetime | str) -> date:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def run_date(logical_date: datetime | None, run_after: datetime | None = None) -> date:
    """The date a run is about: its logical date, or (manual runs without one) the day it ran."""
    if logical_date is not None:
        return as_date(logical_date)
    if run_after is not None:
        return as_date(run_after)
    raise ValueError("this run has neither a logical date nor a run_after time")


def days(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def feature_range(params: Mapping | None, ds: date | None) -> tuple[date, date]:
    """[start, end] of a churn_features run: params start/end (a range rebuild) or the run's day."""
    params = params or {}
    start, end = params.get("start"), params.get("end")
    if start or end:
        if not (start and end):
            raise ValueError(f"a range rebuild needs both params start and end (got start={start}, end={end})")
        return as_date(start), as_date(end)
    if ds is None:
        raise ValueError("no params start/end and no logical date: nothing tells which day to build")
    return ds, ds


# ---- features ----------------------------------------------------------------------------------


def build_features(start: date, end: date, settings=None) -> dict:
    """Publish instances_w1 and instances_modeling for dt in [start, end] in one Spark run.

    Returns per table: partitions written, total rows, rows of the first and last day, and the
    table path; never data. A Spark session this call started is stopped again (task processes
    should not leave a JVM behind); one that was already running (tests, spark-submit) is kept.
    """
    from pyspark.sql import SparkSession

    from etl_jobs.build_features import build_features as run

    had_session = SparkSession.getActiveSession() is not None
    try:
        summary = run(start, end, settings=settings)
    finally:
        active = SparkSession.getActiveSession()
        if active is not None and not had_session:
            active.stop()
    out = {"start": summary["start"], "end": summary["end"], "seconds": summary.get("seconds"), "tables": {}}
    for name, table in summary["tables"].items():
        parts = table.get("partitions", [])
        out["tables"][name] = {
            "path": os.path.dirname(parts[0]["path"]) if parts else None,
            "partitions": len(parts),
            "rows": sum(p["rows"] for p in parts),
            "rows_by_dt": {p["dt"]: p["rows"] for p in parts} if len(parts) <= 31 else None,
        }
    return out


def features_event_extra(start: date, end: date, rescore: bool = True) -> dict:
    """What a features run tells its consumers: the days it published and the days to (re)score."""
    published = [d.isoformat() for d in days(start, end)]
    return {"start": start.isoformat(), "end": end.isoformat(), "dts": published if rescore else []}


def published(table: str, ds: date, settings=None) -> bool:
    """True once partition dt=ds of a feature table is published (its manifest exists)."""
    from churn import storage
    from churn.settings import get_settings, join
    from churn.warehouse import MANIFEST, partition_path

    settings = settings or get_settings()
    return storage.exists(join(partition_path(settings.feature_table_path(table), ds), MANIFEST), settings)


def training_data_ready(day: date, settings=None) -> bool:
    """A retrain for ``day`` trains on instances_modeling dt in [day - window, day): wait for dt=day-1."""
    return published("instances_modeling", day - timedelta(days=1), settings)


# ---- scoring -----------------------------------------------------------------------------------


def dates_to_score(
    event_extras: Iterable[Mapping | None], requested: Iterable[str] = (), fallback: date | None = None
) -> list[date]:
    """The partitions a churn_scoring run scores, sorted and without duplicates.

    ``event_extras`` are the ``extra`` dicts of the asset events that triggered the run (several
    events can be queued into one run); ``requested`` comes from params ``dts`` of a manual run;
    ``fallback`` (a manual run's logical date) is used only when neither names a day.
    """
    found: set[date] = set()
    for extra in event_extras:
        extra = extra or {}
        for value in extra.get("dts") or []:
            found.add(as_date(value))
        if extra.get("dt"):
            found.add(as_date(extra["dt"]))
    found.update(as_date(v) for v in requested or [])
    if not found and fallback is not None:
        found.add(fallback)
    return sorted(found)


def triggered_days(params: Mapping | None, triggering_asset_events, logical_date) -> tuple[list[date], list]:
    """The days an asset-triggered (or manual) run is about, and the event extras they came from.

    ``triggering_asset_events`` maps each asset to the events that triggered the run; their
    ``extra["dts"]`` name the days. Manual runs name them in params ``dts`` or use their logical date.
    """
    extras = [event.extra for events in (triggering_asset_events or {}).values() for event in events]
    fallback = as_date(logical_date) if logical_date else None
    return dates_to_score(extras, (params or {}).get("dts") or [], fallback), extras


def score_days(dts: Iterable[date], settings=None) -> dict:
    """Score each instances_w1 partition with the champion; returns paths, rows and model versions."""
    from models.score import score_partition

    scored = []
    for ds in dts:
        result = score_partition(ds, settings=settings)
        scored.append(_xcom_safe({"dt": ds.isoformat(), **_pick(result, ("path", "rows", "model_version"))}))
    return {"scored": scored, "rows": sum(int(s.get("rows") or 0) for s in scored)}


def champion_version(settings=None) -> str | None:
    from models.registry import Registry

    record = Registry(settings).alias("champion")
    return record["version"] if record else None


def monitor_days(dts: Iterable[date], settings=None) -> dict:
    """Publish the monitoring partitions of each day; returns paths, headline numbers and alerts."""
    from models.monitor import NothingToMonitor, monitor_day

    days_done, skipped, alerts = [], [], []
    for ds in dts:
        try:
            result = monitor_day(ds, settings=settings)
        except NothingToMonitor as exc:
            log.warning("%s", exc)
            skipped.append(ds.isoformat())
            continue
        alerts += [f"{ds}: {a}" for a in result["alerts"]]
        days_done.append(_xcom_safe(_pick(result, ("dt", "performance", "drift"))))
    return {"monitored": days_done, "skipped": skipped, "alerts": alerts}


def raise_monitoring_alerts(alerts: list[str]) -> None:
    """Send monitoring alerts to the same place as task failures (CHURN_ALERT_CALLBACK, or the log)."""
    if not alerts:
        return
    log.error("churn monitoring alerts: %s", alerts)
    target = _alert_target()
    if not target:
        return
    try:
        _resolve(target)({"monitoring_alerts": alerts})
    except Exception:  # an alerting outage must not fail the monitoring run
        log.exception("alert callback %s failed", target)


# ---- retrain -----------------------------------------------------------------------------------


def retrain(day: date, settings=None) -> dict:
    """Train, evaluate, register and promote-or-keep; returns the version, decision and metrics."""
    from models.train import retrain as run

    result = run(day, settings=settings)
    return _xcom_safe(result)


# ---- catalog -----------------------------------------------------------------------------------


def catalog_enabled(settings=None) -> bool:
    from churn.settings import get_settings

    return (settings or get_settings()).deployment == "aws"


def register_partitions(tables: Iterable[str], dts: Iterable[date], settings=None) -> dict:
    """Add the published partitions to the Glue catalog (Athena); only for deployment=aws."""
    from churn.catalog import register_glue
    from churn.settings import get_settings

    settings = settings or get_settings()
    tables = list(tables)
    registered = [register_glue(settings, tables, ds) for ds in dts]
    return _xcom_safe({"tables": tables, "partitions": len(registered)})


# ---- failure alert -----------------------------------------------------------------------------


def alert_on_failure(context: Mapping) -> None:
    """Task failure callback: log one line an operator can act on, then call CHURN_ALERT_CALLBACK.

    The setting is ``module:function``; the function gets the Airflow context (``ti``, ``dag_run``,
    ``exception`` …). It must never make the callback itself fail, so errors are logged only.
    """
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    summary = {
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(dag_run, "run_id", None) or getattr(ti, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "exception": repr(context.get("exception"))[:500],
        "log_url": getattr(ti, "log_url", None),
    }
    log.error("churn task failed: %s", summary)
    target = _alert_target()
    if not target:
        return
    try:
        _resolve(target)(context)
    except Exception:  # an alerting outage must not hide the task's own error
        log.exception("alert callback %s failed", target)


def _alert_target() -> str | None:
    try:
        from churn.settings import get_settings

        value = getattr(get_settings(), "alert_callback", None)
    except Exception:  # broken settings must not break the failure path
        value = None
    return value or os.environ.get("CHURN_ALERT_CALLBACK") or None


def _resolve(target: str):
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"alert callback must be 'module:function', got {target!r}")
    return getattr(importlib.import_module(module_name), attribute)


# ---- XCom hygiene --------------------------------------------------------------------------------


def _pick(mapping: Mapping, keys: Iterable[str]) -> dict:
    return {k: mapping[k] for k in keys if k in mapping}


def _xcom_safe(value, depth: int = 0):
    """JSON-friendly copy with only scalars, lists and dicts: dates → ISO, numpy → Python, frames dropped."""
    if depth > 6:
        return None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return _xcom_safe(value.item(), depth + 1)  # numpy scalar
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            cleaned = _xcom_safe(v, depth + 1)
            if cleaned is not None or v is None:
                out[str(k)] = cleaned
        return out
    if isinstance(value, list | tuple) and len(value) <= 200:
        return [_xcom_safe(v, depth + 1) for v in value]
    if hasattr(value, "__fspath__"):
        return os.fspath(value)
    return None  # DataFrames, arrays, models: never XCom
