"""The feature job as an EMR Serverless run: the request the DAG sends, and no retry beside an earlier attempt.

The job is ``spark-submit build_features.py --start A --end B`` on the application
``emr_application_id``, run as ``emr_execution_role_arn``, with the project and its dependencies in a
packed virtual environment (``make emr-bundle``; unpacked as ``./environment``, its Python is the driver's
and the executors'). The job reads its settings from ``CHURN_*`` environment variables: every setting
the job uses is set explicitly on the driver and on the executors, so it writes to the same warehouse
with the same windows as the Airflow deployment that started it, whatever the job's own defaults are.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from churn.core.settings import Settings

log = logging.getLogger(__name__)

# Settings that describe the Airflow deployment rather than the job; not forwarded to an EMR job.
NOT_FOR_THE_JOB = frozenset({
    "emr_application_id", "emr_execution_role_arn", "emr_entry_point", "emr_archive", "emr_log_uri",
    "emr_timeout_minutes", "emr_spark_submit_parameters", "spark_runner", "spark_master", "airflow_port",
    "airflow_db_url",  # the local Airflow only
    "alert_callback", "alert_notifiers", "spark_short_run_mb", "spark_class_archive_dir",  # local JVM starts only
    "outreach_channels", "outreach_conversion_value", "outreach_holdout", "outreach_forgetting",
    "outreach_prior_precision",  # the outreach policy runs in Airflow tasks, not in the feature job
})
ENVIRONMENT = "environment"  # the folder the archive is unpacked to on the driver and each executor
PYTHON = f"./{ENVIRONMENT}/bin/python"
ACTIVE_STATES = ("SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "QUEUED", "CANCELLING")


class EmrSettingsError(ValueError):
    """A setting an EMR job needs is missing or cannot reach the job; the message names it and the fix."""


def job_environment(settings: Settings) -> dict[str, str]:
    """``CHURN_*`` variables of the job: every job setting that has a value, as text."""
    if not settings.is_remote:
        raise EmrSettingsError(f"CHURN_WAREHOUSE={settings.warehouse} is a folder of the Airflow worker; an EMR job "
                               "cannot write there: set CHURN_WAREHOUSE=s3://bucket/prefix")
    if settings.feature_config and "://" not in settings.feature_config:
        raise EmrSettingsError(f"CHURN_FEATURE_CONFIG={settings.feature_config} is a file of the Airflow worker; "
                               "upload it and set an s3:// URI (or leave it unset for the packaged default)")
    env = {}
    for name, value in settings.model_dump().items():
        if name in NOT_FOR_THE_JOB or value is None:
            continue
        text = str(value)
        if not text:
            continue
        if any(c.isspace() for c in text):
            raise EmrSettingsError(f"setting CHURN_{name.upper()}={text!r} contains whitespace and cannot travel "
                                   "in sparkSubmitParameters")
        env[f"CHURN_{name.upper()}"] = text
    return env


def emr_job_driver(settings: Settings, start: str, end: str) -> dict:
    """The ``jobDriver`` of a run of the feature job for [start, end] (dates or Airflow templates)."""
    paths = settings.emr_code_paths
    confs = [
        f"spark.archives={paths['archive']}#{ENVIRONMENT}",
        f"spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON={PYTHON}",
        f"spark.emr-serverless.driverEnv.PYSPARK_PYTHON={PYTHON}",
        f"spark.executorEnv.PYSPARK_PYTHON={PYTHON}",
        # the sizing settings (docs/operations.md); --conf in emr_spark_submit_parameters, last, still wins
        f"spark.driver.memory={settings.spark_driver_memory}",
        f"spark.executor.memory={settings.spark_executor_memory}",
        f"spark.executor.cores={settings.spark_executor_cores}",
        f"spark.sql.shuffle.partitions={settings.spark_shuffle_partitions}",
    ]
    for key, value in job_environment(settings).items():
        confs += [f"spark.emr-serverless.driverEnv.{key}={value}", f"spark.executorEnv.{key}={value}"]
    parameters = " ".join([*(f"--conf {c}" for c in confs), settings.emr_spark_submit_parameters.strip()]).strip()
    return {"sparkSubmit": {"entryPoint": paths["entry_point"], "entryPointArguments": ["--start", start, "--end", end],
                            "sparkSubmitParameters": parameters}}


def emr_configuration_overrides(settings: Settings) -> dict:
    """Driver and executor logs to ``emr_log_uri`` (S3), where they outlive the application."""
    return {"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": settings.emr_code_paths["log_uri"]}}}


def emr_job_name(run_id: str) -> str:
    """One name per DAG run: every attempt of a run's feature job carries it (how an earlier one is found)."""
    return f"churn_features {run_id}"


def emr_start_job_run_request(settings: Settings, start: str, end: str, run_id: str) -> dict:
    """The complete ``StartJobRun`` request (what the DAG's operator sends; ``churn doctor`` checks it)."""
    needed = {"CHURN_EMR_APPLICATION_ID": settings.emr_application_id,
              "CHURN_EMR_EXECUTION_ROLE_ARN": settings.emr_execution_role_arn}
    missing = [name for name, value in needed.items() if not value]
    if missing:
        raise EmrSettingsError(f"CHURN_SPARK_RUNNER=emr_serverless needs {' and '.join(missing)}")
    return {
        "applicationId": settings.emr_application_id,
        "executionRoleArn": settings.emr_execution_role_arn,
        "name": emr_job_name(run_id),
        "jobDriver": emr_job_driver(settings, start, end),
        "configurationOverrides": emr_configuration_overrides(settings),
        "executionTimeoutMinutes": settings.emr_timeout_minutes,
    }


def cancel_earlier_attempts(settings: Settings, name: str, client: Any = None, poll_seconds: float = 10.0,
                            timeout_seconds: float = 900.0) -> list[str]:
    """Cancel the application's unfinished job runs named ``name`` and wait until they stopped.

    A task that timed out (or whose worker died) can leave its EMR job running; the retry calls this
    first, so two attempts never write the same partitions at once. Returns the cancelled run ids.
    """
    from churn.core.glue import aws_client

    client = client or aws_client("emr-serverless", settings)
    runs, token = [], None
    while True:
        page = client.list_job_runs(applicationId=settings.emr_application_id, states=list(ACTIVE_STATES),
                                    **({"nextToken": token} if token else {}))
        runs += [r["id"] for r in page.get("jobRuns", []) if r.get("name") == name]
        token = page.get("nextToken")
        if not token:
            break
    for run_id in runs:
        log.warning("EMR job %s (%s) of an earlier attempt is still running: cancelling it", run_id, name)
        client.cancel_job_run(applicationId=settings.emr_application_id, jobRunId=run_id)
    deadline = time.monotonic() + timeout_seconds
    for run_id in runs:
        while True:
            state = client.get_job_run(applicationId=settings.emr_application_id, jobRunId=run_id)["jobRun"]["state"]
            if state not in ACTIVE_STATES:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"EMR job {run_id} of an earlier attempt is still {state} after "
                                   f"{timeout_seconds:.0f} s; cancel it in the EMR console, then clear the task")
            time.sleep(poll_seconds)
    return runs
