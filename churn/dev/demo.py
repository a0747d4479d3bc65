"""`churn demo`: simulate ~90 days of trials and run the whole system through the Airflow DAGs.

Nothing runs beside Airflow: a local scheduler, dag-processor and api-server (PostgreSQL metadata DB,
see ``churn.dev.airflow_local``) run the real DAGs —

1. ``churn_features`` triggered with params ``{"start", "end"}`` for the older half of the history
   (one Spark run), then ``churn_retrain`` for the next day: the first champion;
2. ``churn_features`` for the newer half with ``"rescore": true``: one Spark run, whose asset event
   makes ``churn_scoring`` score those days with that champion, which in turn makes
   ``churn_monitoring`` check them — realised performance where outcomes have arrived, drift;
3. ``churn_retrain`` for the day after the history: promoted or kept as challenger;
4. ``airflow backfill create --dag-id churn_features`` over the last days: the daily path, one run
   per day, each of which triggers scoring and monitoring of its day through the assets;

then it prints the champion's metrics next to the best AUC the simulator allows, the most at-risk
trials of the latest day with their reasons, drift and realised performance, where the HTML report
is, and a `churn query` that works. Every process it starts is stopped at the end, also on failure
and Ctrl-C.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import typer

from churn.core.settings import Settings
from churn.core.tables import FEATURE_DRIFT, OUTREACH_ASSIGNMENTS, PREDICTIONS

DAG_IDS = ("churn_features", "churn_retrain", "churn_scoring", "churn_monitoring", "churn_outreach")
# The demo's world has one incident near its end, so that a user meets the alert path: a tracking bug that
# swallows one event type for the last OUTAGE_DAYS days (the trials' behaviour and outcomes are unchanged).
OUTAGE_EVENT_TYPE, OUTAGE_DAYS = "issue_completed", 4
DEMO_TABLE_FOLDERS = ("raw", "features", "predictions", "models", "simulation", "monitoring", "outreach")


class DemoFailed(RuntimeError):
    """A DAG run of the demo failed; the message names the run and where its logs are."""


class Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:5.0f}s] {message}", flush=True)


def _midnight(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()


def _clean_warehouse(settings, say) -> None:
    """Remove only what the demo itself writes (its folders, its tables in the Iceberg catalog); anything else
    under the warehouse stays. A rerun of the demo starts from the same empty state as the first run."""
    from churn.core.tables import TABLES
    from churn.core.warehouse import forget_table

    root = Path(settings.warehouse)
    dropped = [name for name, t in TABLES.items() if t.published and forget_table(name, settings)]
    for name in DEMO_TABLE_FOLDERS:
        if (root / name).exists():
            shutil.rmtree(root / name)
    say(f"warehouse {root}: cleared {', '.join(DEMO_TABLE_FOLDERS)}"
        + (f"; dropped {len(dropped)} tables from the Iceberg catalog" if dropped else ""))


class DagRunner:
    """Trigger DAG runs and wait for them through the REST API of the local Airflow."""

    def __init__(self, airflow, say) -> None:
        self.airflow, self.say = airflow, say
        self.token = airflow.token()
        self.alerted: set[str] = set()  # monitoring runs already reported as "alerts raised"

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        try:
            return self.airflow.api(method, path, body, token=self.token)
        except RuntimeError as exc:
            if "HTTP 401" not in str(exc):
                raise
            self.token = self.airflow.token()
            return self.airflow.api(method, path, body, token=self.token)

    def wait_for_dags(self, dag_ids: tuple[str, ...], timeout: float = 180) -> None:
        """Wait until the dag-processor registered the DAGs, then unpause them (a kept DB may have them paused)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dags = self.api("GET", "/dags?dag_id_pattern=churn_&limit=100")["dags"]
            if set(dag_ids) <= {d["dag_id"] for d in dags}:
                self.set_paused(dag_ids, False)
                return
            time.sleep(1)
        errors = self.api("GET", "/importErrors")
        raise DemoFailed(f"DAGs {dag_ids} not registered after {timeout:.0f} s; import errors: {errors}")

    def set_paused(self, dag_ids: tuple[str, ...], paused: bool) -> None:
        for dag_id in dag_ids:
            self.api("PATCH", f"/dags/{dag_id}", {"is_paused": paused})

    def trigger(self, dag_id: str, logical_date: str | None, conf: dict | None = None, run_id: str | None = None) -> str:
        body = {"logical_date": logical_date, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return self.api("POST", f"/dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def failed_tasks(self, dag_id: str, run_id: str) -> set[str]:
        tis = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {t["task_id"] for t in tis if t["state"] in ("failed", "upstream_failed")}

    def runs(self, dag_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns?limit=200&order_by=-run_after")["dag_runs"]

    def wait_run(self, dag_id: str, run_id: str, what: str, timeout: float = 1200) -> dict:
        deadline, last_note = time.monotonic() + timeout, time.monotonic()
        while time.monotonic() < deadline:
            run = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] == "success":
                return run
            if run["state"] == "failed":
                raise DemoFailed(self._failure(dag_id, run_id))
            if time.monotonic() - last_note > 20:
                self.say(f"  … {what}: {run['state']}")
                last_note = time.monotonic()
            time.sleep(1)
        raise DemoFailed(f"{dag_id} {run_id} did not finish in {timeout:.0f} s")

    def xcom(self, dag_id: str, run_id: str, task_id: str):
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value?deserialize=true"
        try:
            return self.api("GET", path).get("value")
        except RuntimeError as exc:  # a task that returned nothing
            if "HTTP 404" in str(exc):
                return None
            raise

    def _failure(self, dag_id: str, run_id: str) -> str:
        failed = sorted(self.failed_tasks(dag_id, run_id))
        logs = self.airflow.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        return f"{dag_id} run {run_id} failed (tasks {failed}); task logs under {logs}"


def demo_engine(settings: Settings, java: bool | None = None) -> tuple[Settings, dict[str, str], str | None]:
    """Spark wherever Java is found (the default engine); without Java the same DAGs run the feature job on DuckDB,
    and the demo says so in one line. Returns the settings, the DAG tasks' environment for it, and that line."""
    from churn.core.spark import java_available

    if settings.feature_engine != "spark" or (java_available() if java is None else java):
        return settings, {}, None
    note = "Java not found: the feature job runs on DuckDB (embedded) instead of Spark; install Java 17 for Spark"
    return settings.model_copy(update={"feature_engine": "duckdb"}), {"CHURN_FEATURE_ENGINE": "duckdb"}, note


def run_demo(settings: Settings, days: int, instances_per_day: int, backfill_days: int, port: int, fresh: bool) -> dict:
    from churn.core.dates import days as days_between
    from churn.core.spark import java_available
    from churn.dev.airflow_local import DEFAULT_HOME, LocalAirflow, free_port
    from churn.dev.metadata_db import metadata_database
    from churn.dev.simulator import TrackingOutage, simulate

    say = Progress()
    engine_env = {}
    if settings.feature_engine == "spark" and not java_available():
        say("Java not found: the feature job runs on DuckDB (embedded) instead of Spark; install Java 17 for Spark")
        settings = settings.model_copy(update={"feature_engine": "duckdb"})
        engine_env = {"CHURN_FEATURE_ENGINE": "duckdb"}
    if settings.deployment != "local" or settings.is_remote:
        raise typer.BadParameter("the demo runs on a local warehouse (CHURN_DEPLOYMENT=local, a folder)")
    label_days = settings.label_window_days
    if days < label_days + backfill_days + 55:  # the older half of the history (28+ days) trains a first model
        raise typer.BadParameter(f"--days must be at least {label_days + backfill_days + 55}")

    today = datetime.now(UTC).date()
    first = today - timedelta(days=days)  # the simulated world ends yesterday: today's features are complete
    history = (first + timedelta(days=label_days), today - timedelta(days=backfill_days))
    # The history is published in two range runs: a first champion is trained on the older half, and
    # the newer half is scored by it as it would have been day by day; those predictions meet their
    # outcomes 23 days later, which is what monitoring's realised performance shows.
    first_retrain = history[0] + timedelta(days=((history[1] - history[0]).days + 1) // 2)
    older, newer = (history[0], first_retrain - timedelta(days=1)), (first_retrain, history[1])
    retrain_day = history[1] + timedelta(days=1)  # trains on instances_modeling dt < retrain_day
    backfill = (retrain_day, today)  # backfill_days daily runs, the last one for today

    if fresh:
        _clean_warehouse(settings, say)
    say(f"simulating {days} days ({first} … {today - timedelta(days=1)}), ~{instances_per_day} trials/day")
    outage = TrackingOutage(OUTAGE_EVENT_TYPE, today - timedelta(days=OUTAGE_DAYS), OUTAGE_DAYS)
    sim = simulate(first, days, instances_per_day, settings.seed, settings, progress=False, overwrite=fresh,
                   outage=outage)
    say(f"  the world's incident: no '{OUTAGE_EVENT_TYPE}' event is tracked from {outage.first_day} (a tracking bug "
        f"of {OUTAGE_DAYS} days); monitoring should turn red for the days it touches")
    say(f"  {sim['instances']:,} trials, {sim['events']:,} events -> {settings.warehouse}/raw")

    chosen_port = free_port(port)
    # The DAGs' schedules first fire at the next midnight UTC: until then every run is the demo's.
    airflow = LocalAirflow(port=chosen_port, extra_env={"CHURN_WAREHOUSE": settings.warehouse, **engine_env},
                           db=metadata_database(settings.airflow_db_url, DEFAULT_HOME))
    if fresh:
        airflow.stop_stale()
        airflow.db.start()
        airflow.db.drop_database()  # this checkout's own: runs of an earlier demo (other dates) would only confuse
    say(f"starting Airflow: scheduler, dag-processor, api-server on {airflow.url} (metadata DB: {airflow.db.describe()})")
    with airflow.running():
        runner = DagRunner(airflow, say)
        runner.wait_for_dags(DAG_IDS)
        say("Airflow is up; DAGs " + ", ".join(DAG_IDS) + " registered")

        _range_run(runner, older, say, rescore=False)
        _retrain(runner, first_retrain, say)
        _range_run(runner, newer, say, rescore=True)
        _wait_downstream(runner, settings, set(days_between(*newer)), say, "range run")
        _resolve_outreach(settings, days_between(*newer), say)
        _retrain(runner, retrain_day, say)

        say(f"airflow backfill create --dag-id churn_features --from-date {backfill[0]} --to-date {backfill[1]}")
        airflow.airflow(
            "backfill",
            "create",
            "--dag-id",
            "churn_features",
            "--from-date",
            backfill[0].isoformat(),
            "--to-date",
            backfill[1].isoformat(),
            capture=True,
        )
        _wait_downstream(runner, settings, set(days_between(*backfill)), say, "backfill", backfill_runs=True)
        _resolve_outreach(settings, days_between(*backfill), say)
        # Left unpaused, the schedules would run tomorrow for days the simulation does not cover.
        runner.set_paused(DAG_IDS, True)
        say("done; DAGs paused again (unpause them in the UI or with `airflow dags unpause` to run more)")

    from churn.dev.demo_report import summarize

    summary = summarize(settings, today)
    summary["url"], summary["seconds"] = airflow.url, round(time.monotonic() - say.started)
    return summary


def _range_run(runner: DagRunner, days: tuple[date, date], say, rescore: bool) -> None:
    n = (days[1] - days[0]).days + 1
    what = "and scores them with the champion" if rescore else "(no scoring: there is no champion yet)"
    say(f"churn_features, range run {days[0]} … {days[1]}: one Spark job for {n} days {what}")
    run_id = runner.trigger(  # a run id that names its range, as docs/operations.md recommends
        "churn_features", None, {"start": days[0].isoformat(), "end": days[1].isoformat(), "rescore": rescore},
        run_id=f"range__{days[0]}__{days[1]}__{datetime.now(UTC):%H%M%S}",
    )
    runner.wait_run("churn_features", run_id, "range run")
    built = runner.xcom("churn_features", run_id, "build_features") or {}
    rows = {t: v.get("rows") for t, v in (built.get("tables") or {}).items()}
    say(f"  published: {rows}")


def _retrain(runner: DagRunner, day: date, say) -> None:
    say(f"churn_retrain for {day}")
    run_id = runner.trigger("churn_retrain", _midnight(day))
    runner.wait_run("churn_retrain", run_id, "retrain")
    result = runner.xcom("churn_retrain", run_id, "retrain") or {}
    say(f"  model {result.get('version')}: {result.get('reason')}")


def _wait_downstream(runner: DagRunner, settings, wanted: set[date], say, what: str, backfill_runs: bool = False,
                     timeout: float = 1200) -> None:
    """Wait until every day in ``wanted`` is scored and monitored (and, for a backfill, its runs succeeded)."""
    from churn.core.warehouse import list_partitions
    deadline, last, alerted = time.monotonic() + timeout, "", runner.alerted
    while time.monotonic() < deadline:
        features = [r for r in runner.runs("churn_features") if r["run_type"] == "backfill"] if backfill_runs else []
        downstream = runner.runs("churn_scoring") + runner.runs("churn_monitoring") + runner.runs("churn_outreach")
        for run in features + downstream:
            if run["state"] != "failed" or run["dag_run_id"] in alerted:
                continue
            if run["dag_id"] == "churn_monitoring" and runner.failed_tasks(run["dag_id"], run["dag_run_id"]) == {
                    "check_alerts"}:  # published, then raised alerts: red in the UI on purpose
                alerted.add(run["dag_run_id"])
                say(f"  churn_monitoring {run.get('partition_key') or run['dag_run_id']}: alerts raised "
                    "(run marked failed by check_alerts; see `churn monitor report`)")
                continue
            raise DemoFailed(runner._failure(run["dag_id"], run["dag_run_id"]))
        scored = wanted & set(list_partitions(PREDICTIONS, settings))
        monitored = {d for d in scored & set(list_partitions(FEATURE_DRIFT, settings))
                     if _newer(FEATURE_DRIFT, PREDICTIONS, d, settings)}
        assigned = {d for d in scored & set(list_partitions(OUTREACH_ASSIGNMENTS, settings))
                    if _newer(OUTREACH_ASSIGNMENTS, PREDICTIONS, d, settings)}
        done = sum(r["state"] == "success" for r in features)
        note = (f"  … {what}: " + (f"{done}/{len(wanted)} feature runs done, " if backfill_runs else "")
                + f"{len(scored)}/{len(wanted)} days scored, {len(monitored)}/{len(wanted)} monitored, "
                + f"{len(assigned)}/{len(wanted)} outreach assigned")
        busy = any(r["state"] in ("queued", "running") for r in features + downstream)
        if (done == len(wanted) or not backfill_runs) and scored == wanted and monitored == wanted \
                and assigned == wanted and not busy:
            say(note.replace("  … ", "  "))
            return
        if note != last:
            say(note)
            last = note
        time.sleep(1)
    raise DemoFailed(f"{what}: scoring and monitoring of {len(wanted)} days did not finish in {timeout} s")


def _resolve_outreach(settings, days: list[date], say) -> None:
    """The simulated world answers the outreach: the outcomes of the trials assigned on these days follow the
    channel each was given (the CRM would have contacted them); their features and labels are built later."""
    import pandas as pd

    from churn.core.warehouse import list_partitions, read_partitions
    from churn.dev.simulator import resolve_outreach

    assigned = sorted(set(days) & set(list_partitions(OUTREACH_ASSIGNMENTS, settings)))
    if not assigned:
        return
    frame = read_partitions(OUTREACH_ASSIGNMENTS, assigned, settings)[["instance_id", "channel"]]
    result = resolve_outreach(pd.DataFrame(frame), settings)
    say(f"  the simulated world answered {result['contacted']:,} contacts of {len(assigned)} days "
        "(their outcomes follow the channel given)")


def _newer(table, than_table, day: date, settings) -> bool:
    """Partition ``day`` of ``table`` was written after that of ``than_table`` (by their snapshots)."""
    from churn.core.warehouse import partition_snapshot

    mine, theirs = partition_snapshot(table, day, settings), partition_snapshot(than_table, day, settings)
    return bool(mine and theirs and mine["timestamp_ms"] >= theirs["timestamp_ms"])
