"""churn_retrain: weekly retrain; the new model becomes champion only if it is good enough."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, dag, task

from churn.core.tables import INSTANCES_MODELING, MODEL_REGISTRY_URI
from churn.dag_support import runs, tasks

MODELING, MODELS = tasks.asset(INSTANCES_MODELING), Asset(uri=MODEL_REGISTRY_URI, name="model_registry")

DOC = """
### churn_retrain — weekly train, evaluate, register, promote or keep

Every Monday 00:00 UTC, run **D** (its logical date):

1. `wait_for_features` waits (reschedule mode, no worker slot held) until churn_features has
   published `instances_modeling` dt=D-1, the last day of the training window, so a late or failed
   features run delays the retrain instead of leaving a gap in its data;
2. `retrain` trains on the `instances_modeling` partitions dt in [D - window, D), holds out
   the most recent cohorts for validation, registers the new version (metrics, HTML report) and
   promotes it to **champion** only if it clears the AUC floor and is not worse than the current
   champion by more than the tolerance (settings `CHURN_PROMOTION_AUC_*`); otherwise the champion stays.

XCom carries the version, the decision and the metrics (`churn train --run-date D` runs the same job); the model files live in the registry
(`{warehouse}/models/<name>/`). Retrain for another day: trigger with that logical date, or
`airflow backfill create --dag-id churn_retrain --from-date A --to-date B`.
"""


@dag(
    dag_id="churn_retrain",
    schedule=runs.cron_utc("0 0 * * 1"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=24),
    default_args=runs.default_task_args(retries=2),
    tags=["churn", "training", "model"],
    doc_md=DOC,
    description=runs.description(DOC),
)
def churn_retrain():
    @task.sensor(poke_interval=600, timeout=12 * 3600, mode="reschedule")
    def wait_for_features(logical_date=None, dag_run=None) -> bool:
        """True once the last partition of the training window (instances_modeling dt=D-1) is published."""
        from churn.core.settings import Settings
        from churn.jobs import training_data_ready

        return training_data_ready(Settings(), runs.run_date(logical_date, getattr(dag_run, "run_after", None)))

    @task(inlets=[MODELING], outlets=[MODELS], execution_timeout=timedelta(hours=4))
    def retrain(logical_date=None, dag_run=None, outlet_events=None) -> dict:
        """Train, evaluate, register; promote or keep the champion."""
        from churn import jobs
        from churn.core.settings import Settings

        day = runs.run_date(logical_date, getattr(dag_run, "run_after", None))
        result = tasks.run(lambda: jobs.retrain(Settings(), day))
        outlet_events[MODELS].extra = {k: result.get(k) for k in ("version", "promoted") if k in result}
        return result

    @task(execution_timeout=timedelta(hours=1), trigger_rule="all_done")
    def maintain_tables() -> dict:
        """Expire table snapshots older than CHURN_SNAPSHOT_RETENTION_DAYS, delete the files only they used,
        and remove abandoned staging folders (weekly, whatever the retrain did)."""
        from churn import jobs
        from churn.core.settings import Settings

        return tasks.run(lambda: jobs.maintain_tables(Settings()))

    wait_for_features() >> retrain() >> maintain_tables()


churn_retrain()
