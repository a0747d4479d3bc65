"""Which days an Airflow run is about, what its asset events say, and the DAGs' shared task defaults.

Asset-triggered runs have no logical date in Airflow 3. Every producing task names the days it
published twice: as the event's **partition key** (Airflow 3.2+ partitioned assets: ``2026-03-10`` for
a day, ``2026-01-01/2026-01-30`` for a range, ISO 8601 interval notation), which becomes the
``partition_key`` of the consuming run, shown in the UI; and in ``extra = {"dts": [...]}``, the days
the consumer should process. Nothing here imports Airflow at module level.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta

from churn.core.dates import DateRangeError, as_date, days, parse_range
from churn.core.tables import INSTANCES_MODELING, INSTANCES_W1


def run_date(logical_date: datetime | None, run_after: datetime | None = None) -> date:
    """The day a run is about: its logical date, or (manual runs without one) the day it ran."""
    if logical_date is not None:
        return as_date(logical_date)
    if run_after is not None:
        return as_date(run_after)
    raise DateRangeError("this run has neither a logical date nor a run_after time")


def feature_range(params: Mapping | None, logical_date: datetime | None, run_after: datetime | None = None) -> tuple[date, date]:
    """[start, end] of a churn_features run: params start/end (a range rebuild) or the run's day."""
    params = params or {}
    if params.get("start") or params.get("end"):
        if not (params.get("start") and params.get("end")):
            raise DateRangeError(f"a range rebuild needs both params start and end (got {params.get('start')}, "
                                 f"{params.get('end')})")
        return parse_range(start=params["start"], end=params["end"])
    if logical_date is None and run_after is None:
        raise DateRangeError("no params start/end and no logical date: nothing tells which day to build")
    day = run_date(logical_date, run_after)
    return day, day


def features_event_extras(start: date, end: date, rescore: bool) -> dict[str, dict]:
    """The asset events of a features run, by asset URI.

    ``instances_modeling`` names every published day: their outcomes are new, so monitoring measures
    realised performance for each. ``instances_w1`` names the days to score: all of them for a daily run,
    none for a range rebuild unless it asks to rescore (past predictions stay what was said then).
    """
    published = [d.isoformat() for d in days(start, end)]
    return {
        INSTANCES_W1.asset_uri: {"start": start.isoformat(), "end": end.isoformat(), "dts": published if rescore else []},
        INSTANCES_MODELING.asset_uri: {"start": start.isoformat(), "end": end.isoformat(), "dts": published},
    }


def partition_key(start: date, end: date) -> str:
    """The partition key naming the days [start, end]: ``2026-03-10``, or ``2026-01-01/2026-01-30``."""
    return start.isoformat() if start == end else f"{start.isoformat()}/{end.isoformat()}"


def partition_days(key: str | None) -> list[date]:
    """The days a partition key names (the inverse of :func:`partition_key`); none for no key."""
    if not key:
        return []
    start, _, end = key.partition("/")
    try:
        return days(*parse_range(start=start, end=end or start))
    except DateRangeError as exc:
        raise DateRangeError(f"partition key {key!r} names no days: {exc} (expected 2026-03-10 or "
                             "2026-01-01/2026-01-30)") from None


def event_days(extras: Iterable[Mapping | None]) -> list[date]:
    """The days named by several asset events (``extra["dts"]``), sorted and without duplicates."""
    found: set[date] = set()
    for extra in extras:
        found.update(as_date(v) for v in (extra or {}).get("dts") or [])
    return sorted(found)


def triggered_days(params: Mapping | None, triggering_asset_events, logical_date=None,
                   run_partition_key: str | None = None) -> dict[str, list[date]]:
    """The days a run is about, by the URI of the asset whose events named them.

    A manual run names its days in params ``dts``, or in the partition key it was triggered with
    (the REST API's ``partition_key`` of a new run), or gets its logical date; they are returned under
    the key ``"*"``, meaning: for every kind of input.
    """
    by_uri: dict[str, list[date]] = {}
    for asset, events in (triggering_asset_events or {}).items():
        uri = getattr(asset, "uri", str(asset))
        by_uri[uri] = event_days([event.extra for event in events])
    requested = [as_date(v) for v in (params or {}).get("dts") or []]
    if not requested and not by_uri:
        requested = partition_days(run_partition_key)
    if requested or (not any(by_uri.values()) and logical_date is not None):
        by_uri["*"] = sorted(set(requested)) if requested else [as_date(logical_date)]
    return by_uri


def days_for(by_uri: Mapping[str, list[date]], uri: str) -> list[date]:
    """Days of one input: those its asset events named, plus the days a manual run asked for."""
    return sorted(set(by_uri.get(uri, [])) | set(by_uri.get("*", [])))


# ---- task defaults -------------------------------------------------------------------------------


def cron_utc(cron: str):
    """A cron timetable whose logical date is the day a run is for (not the start of an interval).

    ``run_immediately=0``: a newly deployed DAG first runs at the next scheduled time, never for a time
    that already passed; earlier days come only from backfills or range runs.
    """
    from airflow.sdk import CronTriggerTimetable

    return CronTriggerTimetable(cron, timezone="UTC", run_immediately=timedelta(0))


def default_task_args(retries: int = 3) -> dict:
    """Retries with exponential backoff (5, 10, 20 min … capped at 1 h) and the failure alert."""
    from churn.dag_support.tasks import alert_on_failure

    return {
        "owner": "churn",
        "retries": retries,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(hours=1),
        "on_failure_callback": alert_on_failure,
    }


def description(doc: str) -> str:
    """The DAG's one-line description (shown under its name in the UI's DAG list): its doc's title line."""
    title = next(line for line in doc.splitlines() if line.strip())
    return title.lstrip("# ").split(" — ", 1)[-1].strip()
