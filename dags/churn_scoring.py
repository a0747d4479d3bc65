"""churn_scoring: score each new instances_w1 partition with the champion model."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, PartitionedAssetTimetable, dag, task

from churn.core.tables import INSTANCES_W1, PREDICTIONS
from churn.dag_support import runs, tasks

W1, SCORED = tasks.asset(INSTANCES_W1), tasks.asset(PREDICTIONS)

DOC = """
### churn_scoring — conversion probabilities for trials one week in

Scheduled on the **partitioned** asset `instances_w1`: each partition **churn_features** publishes
starts one run carrying its partition key (`2026-03-10`, or `2026-01-01/2026-01-30` for a range
rebuild), shown as *Partition Key* in the UI, and scores the days its events name (`extra["dts"]`; a
range rebuild without `rescore` names none: the run is skipped, past predictions stay). So a backfill
of churn_features leads to one scoring run per backfilled day. Asset-triggered runs have no logical
date: the days come only from the events.

Output: `predictions/instances_w1_scored/dt=D/` (probability, decision, risk band, top reasons, model
version), published atomically; rescoring a day replaces its partition. The champion is loaded and
verified once per run. From a shell, `churn score --start A --end B` runs the same job.

**Manual rescoring**: trigger with params `{"dts": ["2026-01-05", "2026-01-06"]}`, or with a partition
key (`2026-01-05/2026-01-06`; a manual run with neither scores its logical date). Needs a champion model (run **churn_retrain** first): without one the
task fails at once, without retries.
"""


@dag(
    dag_id="churn_scoring",
    schedule=PartitionedAssetTimetable(assets=W1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args=runs.default_task_args(),
    params={
        "dts": Param([], type="array", items={"type": "string", "format": "date"},
                     description="manual runs: the dt partitions to score"),
    },
    tags=["churn", "scoring", "model"],
    doc_md=DOC,
    description=runs.description(DOC),
)
def churn_scoring():
    @task(inlets=[W1], outlets=[SCORED], execution_timeout=timedelta(hours=1))
    def score(params=None, triggering_asset_events=None, logical_date=None, outlet_events=None, dag_run=None) -> dict:
        """Score the instances_w1 partitions this run was triggered for."""
        from churn import jobs
        from churn.core.settings import Settings

        by_uri = runs.triggered_days(params, triggering_asset_events, logical_date, getattr(dag_run, "partition_key", None))
        days = runs.days_for(by_uri, W1.uri)
        summary = tasks.run(lambda: jobs.score(Settings(), days))
        outlet_events[SCORED].extra = {"dts": summary["days"]}
        return summary

    score()


churn_scoring()
