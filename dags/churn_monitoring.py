"""churn_monitoring: realised performance of past predictions and drift of each newly scored day."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, Param, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from churn import orchestration as orch

PREDICTIONS = Asset(uri=orch.PREDICTIONS_URI, name="instances_w1_scored")
MONITORING = Asset(uri=orch.MONITORING_URI, name="model_monitoring")

DOC = """
### churn_monitoring — is the champion still right, and is today's population still like its training data?

Scheduled on the asset `instances_w1_scored`: a run starts when **churn_scoring** publishes, and
checks every day **D** named in the triggering asset events (`extra["dts"]`), like scoring does.

* `monitoring/model_performance/dt=D` — the outcomes that became known on D (`instances_modeling`
  dt=D, trials that started on D-30) joined to the predictions made for them when their first week
  ended (`instances_w1_scored` dt=D-23): realised AUC, log-loss, Brier, precision / recall / F2 of
  the stored decisions, per model version, next to that version's validation AUC.
* `monitoring/feature_drift/dt=D` — PSI of every model feature of `instances_w1` dt=D against the
  champion's training window, and of the score (today's risk bands against 10% each).

Alerts (PSI > `CHURN_MONITORING_PSI_ALERT`, realised AUC under the promotion floor or more than
`CHURN_MONITORING_AUC_DROP_ALERT` below validation) go to `CHURN_ALERT_CALLBACK` (default: the task
log); the run itself succeeds, so an alert never blocks tomorrow's scoring.
**Manual runs**: params `{"dts": ["2026-01-05"]}`; or `churn monitor --start A --end B` from a shell.
Query: `churn query "SELECT dt, roc_auc, log_loss, scored_rows FROM model_performance ORDER BY dt"`.
"""


@dag(
    dag_id="churn_monitoring",
    schedule=[PREDICTIONS],
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args=orch.default_task_args(),
    params={
        "dts": Param(
            [], type="array", items={"type": "string", "format": "date"}, description="manual runs: the days to check"
        ),
    },
    tags=["churn", "monitoring", "model"],
    doc_md=DOC,
)
def churn_monitoring():
    @task(inlets=[PREDICTIONS], outlets=[MONITORING], execution_timeout=timedelta(hours=1))
    def monitor(params=None, triggering_asset_events=None, logical_date=None, outlet_events=None) -> dict:
        """Publish model_performance and feature_drift for the days this run was triggered for."""
        dts, extras = orch.triggered_days(params, triggering_asset_events, logical_date)
        if not dts:
            raise AirflowSkipException(f"no day to monitor in the triggering events {extras}")
        result = orch.monitor_days(dts)
        orch.raise_monitoring_alerts(result["alerts"])
        outlet_events[MONITORING].extra = {"dts": [d["dt"] for d in result["monitored"]], "alerts": len(result["alerts"])}
        return result

    @task(retries=2)
    def register_partitions(monitored: dict) -> dict:
        """Add the monitoring partitions to the Glue catalog so Athena sees them (deployment=aws only)."""
        if not orch.catalog_enabled():
            raise AirflowSkipException("deployment=local: no Glue catalog (churn query reads the warehouse)")
        dts = [orch.as_date(m["dt"]) for m in monitored["monitored"]]
        return orch.register_partitions(["model_performance", "feature_drift"], dts)

    register_partitions(monitor())


churn_monitoring()
