"""churn_monitoring: realised performance once outcomes arrive, and drift of each scored day."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, PartitionedAssetTimetable, dag, task

from churn.core.tables import INSTANCES_MODELING, MODEL_PERFORMANCE, PREDICTIONS
from churn.dag_support import runs, tasks

MODELING, SCORED, MONITORING = tasks.asset(INSTANCES_MODELING), tasks.asset(PREDICTIONS), tasks.asset(MODEL_PERFORMANCE)

DOC = """
### churn_monitoring — is the champion still right, and is today's population still like its training data?

Scheduled on **either** partitioned asset: `instances_modeling` (outcomes published by
**churn_features**) or `instances_w1_scored` (predictions published by **churn_scoring**). Each
partition starts one run carrying its key (the day, or `A/B` for a range), shown as *Partition Key*
in the UI; a day usually has two runs, one when its outcomes arrive and one when it is scored. A run
checks the days its triggering events name:

* days from `instances_modeling` → `monitoring/model_performance/dt=D`: the outcomes that became known
  on D (trials that started on D-30) joined to the predictions made for them when their first week ended
  (`instances_w1_scored` dt=D-23): realised AUC, log-loss, Brier, precision / recall / F2 of the stored
  decisions, per model version, next to that version's validation AUC. This runs whether or not scoring
  succeeded: unscored cohorts give a row with `scored_rows = 0`.
* days from `instances_w1_scored` → `monitoring/feature_drift/dt=D`: PSI of every model feature of
  `instances_w1` dt=D against the reference profile stored with the model version that scored D (its
  training cohorts of the same weekday), and of the score (risk bands against 10% each).

Alerts (PSI > `CHURN_MONITORING_PSI_ALERT`; realised AUC whose 95% interval lies entirely under the
promotion floor or more than `CHURN_MONITORING_AUC_DROP_ALERT` below validation) go to
`CHURN_ALERT_CALLBACK` (default: the task log). The tables are published first; then the task
**check_alerts** fails, one line per alert, so the run is red in the UI. Nothing waits on this DAG:
an alert never blocks tomorrow's scoring. `churn monitor report` draws the dashboard of every day.
**Manual runs**: params `{"dts": ["2026-01-05"]}` (both checks); or `churn monitor --start A --end B`.
Query: `churn query "SELECT dt, roc_auc, log_loss, scored_rows FROM model_performance ORDER BY dt"`.
"""


@dag(
    dag_id="churn_monitoring",
    schedule=PartitionedAssetTimetable(assets=MODELING | SCORED),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args=runs.default_task_args(),
    params={
        "dts": Param([], type="array", items={"type": "string", "format": "date"},
                     description="manual runs: the days to check"),
    },
    tags=["churn", "monitoring", "model"],
    doc_md=DOC,
    description=runs.description(DOC),
)
def churn_monitoring():
    @task(inlets=[MODELING, SCORED], outlets=[MONITORING], execution_timeout=timedelta(hours=1))
    def monitor(params=None, triggering_asset_events=None, logical_date=None, outlet_events=None,
                dag_run=None) -> dict:
        """Publish model_performance for days with new outcomes and feature_drift for newly scored days."""
        from churn import jobs
        from churn.core.settings import Settings

        by_uri = runs.triggered_days(params, triggering_asset_events, logical_date,
                                     getattr(dag_run, "partition_key", None))
        performance_days, drift_days = runs.days_for(by_uri, MODELING.uri), runs.days_for(by_uri, SCORED.uri)
        summary = tasks.run(lambda: jobs.monitor(Settings(), performance_days, drift_days))
        outlet_events[MONITORING].extra = {"dts": summary["days"], "alerts": len(summary["alerts"])}
        return summary

    # The alerts were already sent by monitor (CHURN_ALERT_CALLBACK): no second, failure alert here.
    @task(retries=0, on_failure_callback=None)
    def check_alerts(summary: dict) -> None:
        """Fail, after the tables are published, when monitoring raised alerts: the run shows red."""
        tasks.fail_on_alerts(summary)

    check_alerts(monitor())


churn_monitoring()
