"""churn_features: publish the week-1 feature tables for one day (daily) or a range (params)."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset, Param, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from churn import orchestration as orch

INSTANCES_W1 = Asset(uri=orch.INSTANCES_W1_URI, name="instances_w1")
INSTANCES_MODELING = Asset(uri=orch.INSTANCES_MODELING_URI, name="instances_modeling")

DOC = """
### churn_features — week-1 features, one partition per day

Every day at 00:00 UTC, run **D** (its logical date) publishes partition `dt=D` of

* `features/instances_w1` — trials that started on D-7, with their complete first week (D-7 … D-1);
* `features/instances_modeling` — trials that started on D-30, with the label `retained`.

It updates the assets `instances_w1` and `instances_modeling` with `extra = {"dts": [D]}`:
**churn_scoring** is scheduled on `instances_w1` and scores exactly those days.

**Backfill** (one Spark start per day, fine for a few days):
`airflow backfill create --dag-id churn_features --from-date A --to-date B [--reprocess-behavior completed]`.
**Range rebuild** (one Spark run for the whole range, for weeks or months): trigger this DAG with params
`{"start": "A", "end": "B"}`; add `"rescore": true` to rescore those days too (the default keeps past
predictions). From a shell, `churn features --start A --end B` does the same without Airflow.

Partitions are published atomically with deterministic file names: a rerun of the same days leaves
byte-identical files. Where Spark runs is the setting `CHURN_SPARK_RUNNER` (`local` = in the worker,
master `CHURN_SPARK_MASTER`; `emr_serverless` = a job on EMR Serverless). See docs/operations.md.
"""

PARAMS = {
    "start": Param(None, type=["null", "string"], format="date", description="range rebuild: first dt"),
    "end": Param(None, type=["null", "string"], format="date", description="range rebuild: last dt (inclusive)"),
    "rescore": Param(False, type="boolean", description="range rebuild: rescore the rebuilt days too"),
}


def _range(params, logical_date, dag_run):
    ds = orch.run_date(logical_date, getattr(dag_run, "run_after", None)) if (logical_date or dag_run) else None
    return orch.feature_range(params, ds)


def _announce(outlet_events, params, start, end) -> None:
    """Tell consumers which days were published (asset-triggered runs have no logical date)."""
    ranged = bool((params or {}).get("start"))
    extra = orch.features_event_extra(start, end, rescore=not ranged or bool(params.get("rescore")))
    outlet_events[INSTANCES_W1].extra = extra
    outlet_events[INSTANCES_MODELING].extra = extra


@dag(
    dag_id="churn_features",
    schedule=orch.cron_utc("0 0 * * *"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=8),
    default_args=orch.default_task_args(),
    params=PARAMS,
    tags=["churn", "features", "spark"],
    doc_md=DOC,
)
def churn_features():
    if orch.spark_runner() == "emr_serverless":
        build = _emr_build()
    else:
        # One local Spark job at a time, also when a backfill runs several days at once (its
        # --max-active-runs overrides the DAG's): parallel JVMs on a small worker only thrash.
        @task(
            outlets=[INSTANCES_W1, INSTANCES_MODELING], execution_timeout=timedelta(hours=4), max_active_tis_per_dag=1
        )
        def build_features(params=None, logical_date=None, dag_run=None, outlet_events=None) -> dict:
            """Run the Spark feature job in this worker for the run's day (or params range)."""
            start, end = _range(params, logical_date, dag_run)
            summary = orch.build_features(start, end)
            _announce(outlet_events, params, start, end)
            return summary

        build = build_features()

    @task(retries=2)
    def register_partitions(params=None, logical_date=None, dag_run=None) -> dict:
        """Add the new partitions to the Glue catalog so Athena sees them (deployment=aws only)."""
        if not orch.catalog_enabled():
            raise AirflowSkipException("deployment=local: no Glue catalog (churn query reads the warehouse)")
        start, end = _range(params, logical_date, dag_run)
        return orch.register_partitions(orch.FEATURE_TABLES, orch.days(start, end))

    build >> register_partitions()


def _emr_build():
    """spark_runner=emr_serverless: the same job (`etl_jobs/build_features.py`) as an EMR Serverless run."""
    from airflow.providers.amazon.aws.operators.emr import EmrServerlessStartJobOperator

    from churn.settings import get_settings, join

    settings = get_settings()
    entry_point = getattr(settings, "emr_entry_point", None) or join(settings.warehouse, "code", "build_features.py")
    submit = getattr(settings, "emr_spark_submit_parameters", None) or ""

    @task
    def plan_range(params=None, logical_date=None, dag_run=None) -> dict:
        start, end = _range(params, logical_date, dag_run)
        return {"start": start.isoformat(), "end": end.isoformat()}

    def announce(context, result) -> None:
        plan = context["ti"].xcom_pull(task_ids="plan_range")
        _announce(context["outlet_events"], context["params"], orch.as_date(plan["start"]), orch.as_date(plan["end"]))

    plan = plan_range()
    build = EmrServerlessStartJobOperator(
        task_id="build_features",
        application_id=settings.emr_application_id,
        execution_role_arn=settings.emr_execution_role_arn,
        name="churn_features {{ run_id }}",
        job_driver={
            "sparkSubmit": {
                "entryPoint": entry_point,
                "entryPointArguments": [
                    "--start",
                    "{{ ti.xcom_pull(task_ids='plan_range')['start'] }}",
                    "--end",
                    "{{ ti.xcom_pull(task_ids='plan_range')['end'] }}",
                ],
                "sparkSubmitParameters": submit,
            }
        },
        aws_conn_id="aws_default",
        wait_for_completion=True,
        outlets=[INSTANCES_W1, INSTANCES_MODELING],
        post_execute=announce,
        execution_timeout=timedelta(hours=4),
    )
    plan >> build
    return build


churn_features()
