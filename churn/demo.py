"""`churn demo`: simulate ~120 days of trials and run the whole system through the Airflow DAGs.

Nothing runs beside Airflow: a local scheduler, dag-processor and api-server (PostgreSQL metadata DB,
see ``churn.airflow_local``) run the real DAGs —

1. ``churn_features`` triggered with params ``{"start", "end"}``: the history in one Spark run;
2. ``churn_retrain`` for the day after the history: the first champion;
3. ``airflow backfill create --dag-id churn_features`` over the last days: the daily path, one run
   per day, each of which triggers ``churn_scoring`` through the ``instances_w1`` asset, which in
   turn triggers ``churn_monitoring`` (drift of each day) through ``instances_w1_scored``;

then it prints the champion's metrics next to the best AUC the simulator allows, the most at-risk
trials of the latest day with their reasons, where the HTML report is, and a `churn query` that works.
Every process it starts is stopped at the end, also on failure and Ctrl-C.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import typer

DAG_IDS = ("churn_features", "churn_retrain", "churn_scoring", "churn_monitoring")
DEMO_TABLE_FOLDERS = ("raw", "features", "predictions", "models", "simulation")
QUERY_EXAMPLE = (
    "SELECT dt, count(*) AS trials, round(avg(p_retained), 3) AS mean_p_retained, "
    "sum(prediction_retained) AS predicted_to_convert FROM churn.instances_w1_scored "
    "GROUP BY dt ORDER BY dt DESC LIMIT 3"
)


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
    """Remove only the folders the demo itself writes; anything else under the warehouse stays."""
    root = Path(settings.warehouse)
    for name in DEMO_TABLE_FOLDERS:
        if (root / name).exists():
            shutil.rmtree(root / name)
    say(f"warehouse {root}: cleared {', '.join(DEMO_TABLE_FOLDERS)}")


class DagRunner:
    """Trigger DAG runs and wait for them through the REST API of the local Airflow."""

    def __init__(self, airflow, say) -> None:
        self.airflow, self.say = airflow, say
        self.token = airflow.token()

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
            time.sleep(2)
        errors = self.api("GET", "/importErrors")
        raise DemoFailed(f"DAGs {dag_ids} not registered after {timeout:.0f} s; import errors: {errors}")

    def set_paused(self, dag_ids: tuple[str, ...], paused: bool) -> None:
        for dag_id in dag_ids:
            self.api("PATCH", f"/dags/{dag_id}", {"is_paused": paused})

    def trigger(self, dag_id: str, logical_date: str | None, conf: dict | None = None) -> str:
        body = {"logical_date": logical_date, "conf": conf or {}}
        return self.api("POST", f"/dags/{dag_id}/dagRuns", body)["dag_run_id"]

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
            time.sleep(2)
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
        tis = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        failed = [t["task_id"] for t in tis if t["state"] in ("failed", "upstream_failed")]
        logs = self.airflow.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        return f"{dag_id} run {run_id} failed (tasks {failed}); task logs under {logs}"


def run_demo(days: int, instances_per_day: int, backfill_days: int, port: int, fresh: bool) -> dict:
    from churn.airflow_local import LocalAirflow, free_port
    from churn.settings import get_settings, reset_settings_cache
    from churn.simulator import simulate

    say = Progress()
    settings = get_settings()
    if settings.deployment != "local" or settings.is_remote:
        raise typer.BadParameter("the demo runs on a local warehouse (CHURN_DEPLOYMENT=local, a folder)")
    label_days = settings.label_window_days
    if days < label_days + backfill_days + 30:
        raise typer.BadParameter(f"--days must be at least {label_days + backfill_days + 30}")

    today = datetime.now(UTC).date()
    first = today - timedelta(days=days)  # the simulated world ends yesterday: today's features are complete
    history = (first + timedelta(days=label_days), today - timedelta(days=backfill_days))
    retrain_day = history[1] + timedelta(days=1)  # trains on instances_modeling dt < retrain_day
    backfill = (retrain_day, today)  # backfill_days daily runs, the last one for today

    if fresh:
        _clean_warehouse(settings, say)
    say(f"simulating {days} days ({first} … {today - timedelta(days=1)}), ~{instances_per_day} trials/day")
    sim = simulate(first, days, instances_per_day, settings.seed, settings, progress=False, overwrite=fresh)
    say(f"  {sim['instances']:,} trials, {sim['events']:,} events -> {settings.warehouse}/raw")

    chosen_port = free_port(port)
    # The DAGs' schedules first fire at the next midnight UTC: until then every run is the demo's.
    airflow = LocalAirflow(port=chosen_port, extra_env={"CHURN_WAREHOUSE": settings.warehouse})
    if fresh:
        airflow.stop_stale()
        airflow.drop_database()  # runs of an earlier demo (other dates) would only confuse the UI
    say(f"starting Airflow: scheduler, dag-processor, api-server on {airflow.url} (metadata DB {airflow.database})")
    with airflow.running():
        runner = DagRunner(airflow, say)
        runner.wait_for_dags(DAG_IDS)
        say("Airflow is up; DAGs churn_features, churn_retrain, churn_scoring, churn_monitoring registered")

        say(
            f"churn_features, range run {history[0]} … {history[1]} (one Spark job for {(history[1] - history[0]).days + 1} days)"
        )
        run_id = runner.trigger(
            "churn_features", None, {"start": history[0].isoformat(), "end": history[1].isoformat()}
        )
        runner.wait_run("churn_features", run_id, "range run")
        built = runner.xcom("churn_features", run_id, "build_features") or {}
        rows = {t: v.get("rows") for t, v in (built.get("tables") or {}).items()}
        say(f"  history published: {rows}")

        say(f"churn_retrain for {retrain_day}")
        run_id = runner.trigger("churn_retrain", _midnight(retrain_day))
        runner.wait_run("churn_retrain", run_id, "retrain")
        result = runner.xcom("churn_retrain", run_id, "retrain") or {}
        say(f"  model {result.get('version')}: {result.get('reason')}")

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
        _wait_backfill_and_scoring(runner, settings, backfill, say)
        # Left unpaused, the schedules would run tomorrow for days the simulation does not cover.
        runner.set_paused(DAG_IDS, True)
        say("done; DAGs paused again (unpause them in the UI or with `airflow dags unpause` to run more)")

    reset_settings_cache()
    summary = summarize(get_settings(), today)
    summary["url"], summary["seconds"] = airflow.url, round(time.monotonic() - say.started)
    return summary


def _wait_backfill_and_scoring(runner: DagRunner, settings, backfill: tuple[date, date], say, timeout=1200) -> None:
    """Wait until the backfill's runs succeeded and each of its days is scored and monitored."""
    from churn.warehouse import list_partitions
    from models.monitor import DRIFT_TABLE, table_path

    wanted = {backfill[0] + timedelta(days=i) for i in range((backfill[1] - backfill[0]).days + 1)}
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        features = [r for r in runner.runs("churn_features") if r["run_type"] == "backfill"]
        scoring = runner.runs("churn_scoring") + runner.runs("churn_monitoring")
        for run in features + scoring:
            if run["state"] == "failed":
                raise DemoFailed(runner._failure(run["dag_id"], run["dag_run_id"]))
        scored = wanted & set(list_partitions(settings.predictions_table_path(), settings))
        done = sum(r["state"] == "success" for r in features)
        monitored = wanted & set(list_partitions(table_path(settings, DRIFT_TABLE), settings))
        note = (f"  … backfill: {done}/{len(wanted)} feature runs done, {len(scored)}/{len(wanted)} days scored, "
                f"{len(monitored)}/{len(wanted)} monitored")
        busy = any(r["state"] in ("queued", "running") for r in features + scoring)
        if done == len(wanted) and scored == wanted and monitored == wanted and not busy:
            say(note.replace("  … ", "  "))
            return
        if note != last:
            say(note)
            last = note
        time.sleep(3)
    raise DemoFailed(f"backfill {backfill} and its scoring and monitoring did not finish in {timeout} s")


def summarize(settings, today: date, top: int = 10) -> dict:
    """The numbers the demo ends with, read from the warehouse and the registry."""
    import pandas as pd
    import pyarrow.parquet as pq
    from sklearn.metrics import roc_auc_score

    from churn.query import run_query
    from churn.warehouse import list_partitions, read_partition
    from models.registry import Registry

    registry = Registry(settings)
    champion = registry.alias("champion")
    metadata = registry.metadata(champion["version"])
    validation = pq.read_table(
        io.BytesIO(registry.read_artifact(champion["version"], "validation_scores.parquet"))
    ).to_pandas()
    truth = pd.read_parquet(settings.truth_path, columns=["instance_id", "p_convert"])
    joined = validation.merge(truth, on="instance_id", how="inner")
    best_auc = float(roc_auc_score(joined["retained"], joined["p_convert"]))

    latest = list_partitions(settings.predictions_table_path(), settings)[-1]
    scored = read_partition(settings.predictions_table_path(), latest, settings)
    at_risk = scored.sort_values(["p_retained", "instance_id"]).head(top)
    query = run_query(QUERY_EXAMPLE, settings)
    from models.monitor import DRIFT_TABLE, table_path

    drift = read_partition(table_path(settings, DRIFT_TABLE), latest, settings)
    drift = drift.sort_values(["psi", "feature"], ascending=[False, True]).head(3)
    first_scored = list_partitions(settings.predictions_table_path(), settings)[0]
    outcomes_from = first_scored + timedelta(days=settings.label_window_days - settings.first_week_days)
    return {
        "champion": champion["version"],
        "metrics": metadata.get("metrics", {}),
        "validation_rows": len(validation),
        "best_possible_auc": best_auc,
        "latest_dt": latest.isoformat(),
        "scored_latest": len(scored),
        "at_risk": at_risk,
        "report": registry.artifact_path(champion["version"], "report.html"),
        "query": query,
        "drift": drift,
        "outcomes_from": outcomes_from.isoformat(),
    }


def print_summary(summary: dict) -> None:
    from churn.query import print_frame

    m = summary["metrics"]
    print("\n=== champion", summary["champion"], "===")
    print(
        f"validation (out of time, {summary['validation_rows']} trials):  AUC {m.get('roc_auc', float('nan')):.3f}   "
        f"PR-AUC {m.get('pr_auc', float('nan')):.3f}   log-loss {m.get('log_loss', float('nan')):.3f}   "
        f"F2 {m.get('f2', float('nan')):.3f} at threshold {m.get('threshold', float('nan')):.3f}"
    )
    print(f"best possible AUC on the same trials (simulator's true p_convert): {summary['best_possible_auc']:.3f}")
    print(
        f"\n=== most at-risk trials that started a week before {summary['latest_dt']} "
        f"({summary['scored_latest']} scored) ==="
    )
    print(f"{'instance_id':<22} {'started':<10}  {'p_retained':>10}  why (features pulling the probability down most)")
    for row in summary["at_risk"].itertuples():
        reasons = [getattr(row, f"reason_{k}_feature") for k in (1, 2, 3)]
        reasons = ", ".join(r for r in reasons if isinstance(r, str)) or "-"
        print(f"{row.instance_id:<22} {str(row.eval_start_date):<10}  {row.p_retained:>10.3f}  {reasons}")
    drift = summary["drift"]
    shifts = ", ".join(f"{r.feature} {r.psi:.3f}" for r in drift.itertuples())
    alerts = int(drift["alert"].notna().sum())
    print(f"\ndrift of {summary['latest_dt']} against the training window (largest PSI): {shifts}; "
          f"{alerts} alert(s) (PSI > 0.25)")
    print(f"realised performance (monitoring/model_performance) starts on {summary['outcomes_from']}, when the "
          "first scored trials reach the end of their 30-day label window")
    print(f"\nHTML report of the champion: {summary['report']}")
    print(f'\nquery the tables with Athena SQL (DuckDB locally):\n  .venv/bin/churn query "{QUERY_EXAMPLE}"')
    print_frame(summary["query"])
    print("\nsee the DAG runs: make airflow   (then open http://127.0.0.1:8080, user admin, password printed there)")
    print(f"demo finished in {summary['seconds']} s")


def demo_command(
    days: int = typer.Option(120, "--days", min=60, help="simulated days of trials"),
    instances_per_day: int = typer.Option(150, "--instances-per-day", min=50, help="new trials per day"),
    backfill_days: int = typer.Option(
        3,
        "--backfill-days",
        min=1,
        max=14,
        help="last days run through `airflow backfill create` (one Spark start each)",
    ),
    port: int = typer.Option(
        int(os.environ.get("CHURN_AIRFLOW_PORT", 8080)),
        "--port",
        help="api-server port (a free one is chosen if it is taken)",
    ),
    fresh: bool = typer.Option(
        True, "--fresh/--keep", help="clear the demo's tables and its Airflow metadata DB first"
    ),
) -> None:
    """Simulate trials and run features, retrain and scoring through the Airflow DAGs; print the results."""
    from churn.airflow_local import AirflowNotHealthy

    try:
        summary = run_demo(days, instances_per_day, backfill_days, port, fresh)
    except (DemoFailed, AirflowNotHealthy) as exc:
        typer.secho(f"demo failed: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.secho("interrupted; every Airflow process the demo started was stopped", fg="yellow", err=True)
        raise typer.Exit(130) from None
    print_summary(summary)
