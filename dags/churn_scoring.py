"""churn_scoring: score each new instances_w1 partition with the champion model."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, Param, dag, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from churn import orchestration as orch

INSTANCES_W1 = Asset(uri=orch.INSTANCES_W1_URI, name="instances_w1")
PREDICTIONS = Asset(uri=orch.PREDICTIONS_URI, name="instances_w1_scored")

DOC = """
### churn_scoring — conversion probabilities for trials one week in

Scheduled on the asset `instances_w1`: a run starts when **churn_features** publishes a partition,
and scores every day named in the triggering asset events (`extra["dts"]`; when several events
queue up behind a running scoring run, the next run scores all of them). So a backfill of
churn_features leads to scoring of the same days. Asset-triggered runs have no logical date: the
days come only from the events.

Output: `predictions/instances_w1_scored/dt=D/` (probability, risk rank, top reasons, model version),
published atomically; rescoring a day replaces its partition.

**Manual rescoring**: trigger with params `{"dts": ["2026-01-05", "2026-01-06"]}` (a manual run without
params scores its logical date). Needs a champion model (run **churn_retrain** first): without one the
task fails at once, without retries.
"""


@dag(
    dag_id="churn_scoring",
    schedule=[INSTANCES_W1],
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args=orch.default_task_args(),
    params={
        "dts": Param(
            [],
            type="array",
            items={"type": "string", "format": "date"},
            description="manual runs: the dt partitions to score",
        ),
    },
    tags=["churn", "scoring", "model"],
    doc_md=DOC,
)
def churn_scoring():
    @task(inlets=[INSTANCES_W1], outlets=[PREDICTIONS], execution_timeout=timedelta(hours=1))
    def score(params=None, triggering_asset_events=None, logical_date=None, outlet_events=None) -> dict:
        """Score the instances_w1 partitions this run was triggered for."""
        dts, extras = orch.triggered_days(params, triggering_asset_events, logical_date)
        if not dts:
            raise AirflowSkipException(f"no day to score in the triggering events {extras}")
        if orch.champion_version() is None:
            raise AirflowFailException("no champion model yet: run churn_retrain, then clear this task")
        result = orch.score_days(dts)
        outlet_events[PREDICTIONS].extra = {"dts": [d.isoformat() for d in dts]}
        return result

    @task(retries=2)
    def register_partitions(scored: dict) -> dict:
        """Add the scored partitions to the Glue catalog so Athena sees them (deployment=aws only)."""
        if not orch.catalog_enabled():
            raise AirflowSkipException("deployment=local: no Glue catalog (churn query reads the warehouse)")
        dts = [orch.as_date(s["dt"]) for s in scored["scored"]]
        return orch.register_partitions(["instances_w1_scored"], dts)

    register_partitions(score())


churn_scoring()
