"""churn_features: publish the week-1 feature tables for one day (daily) or a range (params)."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task

from churn.core.settings import Settings
from churn.core.tables import INSTANCES_MODELING, INSTANCES_W1
from churn.dag_support import runs, tasks

W1, MODELING = tasks.asset(INSTANCES_W1), tasks.asset(INSTANCES_MODELING)

DOC = """
### churn_features — week-1 features, one partition per day

Every day at 00:00 UTC, run **D** (its logical date) publishes partition `dt=D` of

* `features/instances_w1` — trials that started on D-7, with their complete first week (D-7 … D-1);
* `features/instances_modeling` — trials that started on D-30, with the label `retained`.

Asset events carry the **partition key** of the days published (`D`, or `A/B` for a range rebuild):
the churn_scoring and churn_monitoring runs they trigger carry the same key, shown as *Partition Key*
in the UI. `instances_w1` names the days to score (`extra["dts"]`: D; a range rebuild names none unless
`"rescore": true`, and its scoring run is skipped), `instances_modeling` names every published day:
**churn_scoring** scores the first, **churn_monitoring** measures realised performance on the second.
Runs of this DAG are named by their day (`scheduled__D…`, `backfill__D…`); give a range rebuild a run id
that names its range, e.g. `airflow dags trigger churn_features --run-id range__A__B --conf '{"start": "A", "end": "B"}'`.

**Backfill** (one Spark start per day, fine for a few days):
`airflow backfill create --dag-id churn_features --from-date A --to-date B [--reprocess-behavior completed]`.
**Range rebuild** (one Spark run for the whole range, for weeks or months): trigger this DAG with params
`{"start": "A", "end": "B"}`; add `"rescore": true` to rescore those days too. From a shell,
`churn features --start A --end B` runs the same job.

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
    return runs.feature_range(params, logical_date, getattr(dag_run, "run_after", None))


def _announce(outlet_events, params, start, end) -> None:
    """Tell consumers which days were published: the partition key names the runs they trigger."""
    rescore = not (params or {}).get("start") or bool((params or {}).get("rescore"))
    extras = runs.features_event_extras(start, end, rescore=rescore)
    for asset in (W1, MODELING):
        outlet_events[asset].extra = extras[asset.uri]
        outlet_events[asset].add_partitions(runs.partition_key(start, end))


@dag(
    dag_id="churn_features",
    schedule=runs.cron_utc("0 0 * * *"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=8),
    default_args=runs.default_task_args(),
    params=PARAMS,
    tags=["churn", "features", "spark"],
    doc_md=DOC,
    description=runs.description(DOC),
)
def churn_features():
    settings = Settings()
    if settings.spark_runner == "emr_serverless":
        plan, build = _emr_build(settings)
    else:
        # One local Spark job at a time, also when a backfill runs several days at once (its
        # --max-active-runs overrides the DAG's): parallel JVMs on a small worker only thrash.
        @task(outlets=[W1, MODELING], execution_timeout=timedelta(hours=4), max_active_tis_per_dag=1)
        def build_features(params=None, logical_date=None, dag_run=None, outlet_events=None) -> dict:
            """Run the Spark feature job in this worker for the run's day (or params range)."""
            from churn import jobs

            start, end = _range(params, logical_date, dag_run)
            summary = tasks.run(lambda: jobs.build_features(Settings(), start, end))
            _announce(outlet_events, params, start, end)
            return summary

        build_features()


def _emr_build(settings: Settings):
    """spark_runner=emr_serverless: the same job (`build_features.py`) as an EMR Serverless run."""
    from airflow.providers.amazon.aws.operators.emr import EmrServerlessStartJobOperator

    from churn.dag_support.emr import emr_start_job_run_request

    @task
    def plan_range(params=None, logical_date=None, dag_run=None) -> dict:
        """The days this run builds (the EMR job's --start/--end)."""
        from churn.core.dates import days

        start, end = _range(params, logical_date, dag_run)
        return {"start": start.isoformat(), "end": end.isoformat(), "days": [d.isoformat() for d in days(start, end)]}

    def cancel_earlier_attempt(context) -> None:
        """A retry never runs beside the job of an attempt that timed out: cancel it first."""
        from churn.dag_support.emr import cancel_earlier_attempts, emr_job_name

        cancel_earlier_attempts(Settings(), emr_job_name(context["run_id"]))

    def announce(context, result) -> None:  # noqa: ARG001
        from churn.core.dates import as_date

        plan = context["ti"].xcom_pull(task_ids="plan_range")
        _announce(context["outlet_events"], context["params"], as_date(plan["start"]), as_date(plan["end"]))

    request = emr_start_job_run_request(
        settings, "{{ ti.xcom_pull(task_ids='plan_range')['start'] }}",
        "{{ ti.xcom_pull(task_ids='plan_range')['end'] }}", "{{ run_id }}",
    )
    plan = plan_range()
    build = EmrServerlessStartJobOperator(
        task_id="build_features",
        aws_conn_id=None,  # the worker's boto3 credential chain (MWAA: its execution role), like S3 and Glue
        region_name=settings.aws_region,
        application_id=request["applicationId"],
        execution_role_arn=request["executionRoleArn"],
        name=request["name"],
        job_driver=request["jobDriver"],
        configuration_overrides=request["configurationOverrides"],
        config={"executionTimeoutMinutes": request["executionTimeoutMinutes"]},
        wait_for_completion=True,
        waiter_delay=60,
        waiter_max_attempts=settings.emr_timeout_minutes + 5,
        pre_execute=cancel_earlier_attempt,
        outlets=[W1, MODELING],
        post_execute=announce,
        execution_timeout=timedelta(minutes=settings.emr_timeout_minutes + 10),
    )
    plan >> build
    return plan, build


churn_features()
