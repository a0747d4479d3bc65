"""EMR Serverless: the request reaches the job with every setting it needs, and a retry cancels the
job of an earlier attempt (against moto's EMR Serverless API on 127.0.0.1)."""

from __future__ import annotations

import boto3
import pytest

from churn.core.settings import Settings
from churn.dag_support.emr import (
    NOT_FOR_THE_JOB,
    EmrSettingsError,
    cancel_earlier_attempts,
    emr_job_name,
    emr_start_job_run_request,
    job_environment,
)

ROLE = "arn:aws:iam::123456789012:role/churn-emr"


def _settings(**values) -> Settings:
    base = {"warehouse": "s3://data/churn", "spark_runner": "emr_serverless", "emr_application_id": "app-1",
            "emr_execution_role_arn": ROLE}
    return Settings(_env_file=None, **(base | values))


def _confs(request: dict) -> list[str]:
    return request["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"].removeprefix("--conf ").split(" --conf ")


def test_every_job_setting_reaches_the_driver_and_the_executors():
    settings = _settings(feature_config="s3://data/config/features.yaml", s3_endpoint_url="http://minio:9000",
                         table_catalog="glue")
    confs = _confs(emr_start_job_run_request(settings, "2026-03-01", "2026-03-07", "manual__1"))
    job_fields = [name for name in Settings.model_fields if name not in NOT_FOR_THE_JOB]
    for name in job_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        for prefix in ("spark.emr-serverless.driverEnv", "spark.executorEnv"):
            assert f"{prefix}.CHURN_{name.upper()}={value}" in confs, name
    assert set(job_environment(settings)) >= {"CHURN_WAREHOUSE", "CHURN_FEATURE_CONFIG", "CHURN_TABLE_CATALOG",
                                              "CHURN_S3_ENDPOINT_URL", "CHURN_LABEL_WINDOW_DAYS"}
    assert NOT_FOR_THE_JOB <= set(Settings.model_fields)  # a renamed setting cannot silently start travelling


def test_the_request_has_the_archive_the_entry_point_the_logs_and_a_timeout():
    request = emr_start_job_run_request(_settings(emr_timeout_minutes=90), "2026-03-01", "2026-03-07", "manual__1")
    assert request["name"] == emr_job_name("manual__1") == "churn_features manual__1"
    assert request["applicationId"] == "app-1" and request["executionRoleArn"] == ROLE
    assert request["executionTimeoutMinutes"] == 90
    submit = request["jobDriver"]["sparkSubmit"]
    assert submit["entryPoint"] == "s3://data/churn/code/build_features.py"  # default: beside the warehouse
    assert submit["entryPointArguments"] == ["--start", "2026-03-01", "--end", "2026-03-07"]
    assert "spark.archives=s3://data/churn/code/churn-env.tar.gz#environment" in _confs(request)
    assert request["configurationOverrides"]["monitoringConfiguration"]["s3MonitoringConfiguration"]["logUri"] == \
        "s3://data/churn/logs/emr"


@pytest.mark.parametrize(("values", "message"), [
    ({"warehouse": "/srv/warehouse"}, r"CHURN_WAREHOUSE=/srv/warehouse is a folder of the Airflow worker"),
    ({"feature_config": "/etc/churn/features.yaml"}, r"CHURN_FEATURE_CONFIG=/etc/churn/features.yaml is a file of "
                                                     r"the Airflow worker; upload it and set an s3:// URI"),
    ({"threshold_objective": "cost: 5"}, r"CHURN_THRESHOLD_OBJECTIVE='cost: 5' contains whitespace"),
    ({"emr_application_id": None}, r"CHURN_SPARK_RUNNER=emr_serverless needs CHURN_EMR_APPLICATION_ID"),
])
def test_settings_that_cannot_reach_the_job_are_refused_with_the_fix(values, message):
    with pytest.raises(EmrSettingsError, match=message):
        emr_start_job_run_request(_settings(**values), "2026-03-01", "2026-03-01", "r")


def test_a_retry_cancels_the_still_running_job_of_its_run_and_nothing_else(aws):
    client = boto3.client("emr-serverless", region_name="us-east-1", endpoint_url=aws)
    app = client.create_application(name="churn", releaseLabel="emr-7.9.0", type="SPARK")["applicationId"]
    settings = _settings(emr_application_id=app, aws_endpoint_url=aws)

    def start(run_id: str) -> str:
        request = emr_start_job_run_request(settings, "2026-03-01", "2026-03-01", run_id)
        return client.start_job_run(clientToken=run_id + str(len(started)), **request)["jobRunId"]

    started = []
    started += [start("scheduled__2026-03-02"), start("scheduled__2026-03-03"), start("scheduled__2026-03-02")]
    earlier, other, finished = started
    # moto finishes every job at once; the server runs in this process, so make two of them still run
    from moto.backends import get_backend

    for job in get_backend("emr-serverless")["123456789012"]["us-east-1"].job_runs[app]:
        job.state = "SUCCESS" if job.id == finished else "RUNNING"

    assert cancel_earlier_attempts(settings, emr_job_name("scheduled__2026-03-02"), poll_seconds=0) == [earlier]
    state = {r: client.get_job_run(applicationId=app, jobRunId=r)["jobRun"]["state"] for r in started}
    assert state == {earlier: "CANCELLED", other: "RUNNING", finished: "SUCCESS"}
    assert cancel_earlier_attempts(settings, emr_job_name("scheduled__2026-03-02"), poll_seconds=0) == []
