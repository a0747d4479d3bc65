"""DAG integrity: every file imports, fast and without heavy libraries, with the intended wiring."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest

from churn.core.tables import (
    INSTANCES_MODELING,
    INSTANCES_W1,
    MODEL_PERFORMANCE,
    MODEL_REGISTRY_URI,
    OUTREACH_ASSIGNMENTS,
    OUTREACH_EFFECT,
    PREDICTIONS,
)
from churn.dag_support.tasks import alert_on_failure

from .conftest import DAG_IDS, DAGS_FOLDER

HEAVY = ("pyspark", "xgboost", "pandas", "sklearn", "numpy", "matplotlib")

PARSE_SCRIPT = """
import json, sys, time
started = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
out = {
    "seconds": time.perf_counter() - started,
    "errors": {k: str(v)[:2000] for k, v in bag.import_errors.items()},
    "dags": sorted(bag.dags),
    "heavy": sorted(m for m in sys.argv[2].split(",") if m in sys.modules),
    "tasks": {d: sorted(t.task_id for t in bag.dags[d].tasks) for d in bag.dags},
    "operators": {d: {t.task_id: type(t).__name__ for t in bag.dags[d].tasks} for d in bag.dags},
}
print("RESULT" + json.dumps(out))
"""


def _parse_in_subprocess(extra_env: dict | None = None) -> dict:
    """Parse dags/ in a fresh interpreter, as the dag-processor does, so sys.modules is clean."""
    env = {**os.environ, **(extra_env or {})}
    result = subprocess.run(
        [sys.executable, "-c", PARSE_SCRIPT, str(DAGS_FOLDER), ",".join(HEAVY)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT") :])


def test_every_dag_file_parses_without_heavy_imports():
    out = _parse_in_subprocess()
    print(f"parsing dags/ took {out['seconds']:.1f} s")  # visible with -s; informative, not asserted tightly
    assert out["errors"] == {}
    assert out["dags"] == sorted(DAG_IDS)
    assert out["heavy"] == [], f"DAG files import {out['heavy']} at parse time; import them inside tasks"
    assert out["seconds"] < 60


EMR_SCRIPT = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
build = bag.dags["churn_features"].get_task("build_features")
print("RESULT" + json.dumps({"type": type(build).__name__, "driver": build.job_driver,
      "application_id": build.application_id, "role": build.execution_role_arn, "name": build.name,
      "overrides": build.configuration_overrides, "config": build.config, "aws_conn_id": build.aws_conn_id,
      "wait": [build.waiter_delay, build.waiter_max_attempts], "timeout": build.execution_timeout.total_seconds(),
      "pre_execute": build.pre_execute is not None, "upstream": sorted(build.upstream_task_ids)}))
"""
EMR_ENV = {
    "CHURN_SPARK_RUNNER": "emr_serverless",
    "CHURN_EMR_APPLICATION_ID": "app-1",
    "CHURN_EMR_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/churn-emr",
    "CHURN_EMR_ENTRY_POINT": "s3://code-bucket/churn/build_features.py",
    "CHURN_EMR_ARCHIVE": "s3://code-bucket/churn/churn-env.tar.gz",
    "CHURN_EMR_LOG_URI": "s3://log-bucket/emr/",
    "CHURN_EMR_SPARK_SUBMIT_PARAMETERS": "--conf spark.executor.memory=8g",
    "CHURN_WAREHOUSE": "s3://data-bucket/churn",
    "CHURN_LABEL_WINDOW_DAYS": "21",
}


def _emr_task(extra_env: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")} | EMR_ENV | extra_env
    return subprocess.run([sys.executable, "-c", EMR_SCRIPT, str(DAGS_FOLDER)], env=env, capture_output=True,
                          text=True, timeout=120)


def test_emr_serverless_runner_submits_the_job_with_its_code_environment_settings_and_logs():
    result = _emr_task({})
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(next(x for x in result.stdout.splitlines() if x.startswith("RESULT"))[len("RESULT"):])
    assert out["type"] == "EmrServerlessStartJobOperator"
    assert (out["application_id"], out["role"]) == ("app-1", "arn:aws:iam::123456789012:role/churn-emr")
    assert out["name"] == "churn_features {{ run_id }}"
    submit = out["driver"]["sparkSubmit"]
    assert submit["entryPoint"] == "s3://code-bucket/churn/build_features.py"
    assert submit["entryPointArguments"][0::2] == ["--start", "--end"]
    assert "plan_range" in submit["entryPointArguments"][1] and "plan_range" in submit["entryPointArguments"][3]
    confs = submit["sparkSubmitParameters"].split(" --conf ")
    assert confs[0] == "--conf spark.archives=s3://code-bucket/churn/churn-env.tar.gz#environment"
    for python in ("spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON", "spark.emr-serverless.driverEnv.PYSPARK_PYTHON",
                   "spark.executorEnv.PYSPARK_PYTHON"):
        assert f"{python}=./environment/bin/python" in confs
    for prefix in ("spark.emr-serverless.driverEnv", "spark.executorEnv"):
        assert f"{prefix}.CHURN_WAREHOUSE=s3://data-bucket/churn" in confs
        assert f"{prefix}.CHURN_LABEL_WINDOW_DAYS=21" in confs
        assert f"{prefix}.CHURN_TRAINING_WINDOW_DAYS=90" in confs  # defaults too: the job never guesses
    assert "CHURN_EMR_APPLICATION_ID" not in submit["sparkSubmitParameters"]  # deployment settings stay with Airflow
    assert confs[-1] == "spark.executor.memory=8g"  # the user's parameters last: they win
    assert out["overrides"] == {"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": "s3://log-bucket/emr/"}}}
    assert out["config"] == {"executionTimeoutMinutes": 240}  # EMR stops a runaway job by itself
    assert out["aws_conn_id"] is None  # the worker's boto3 credentials, like S3 and Glue
    assert out["wait"][0] * out["wait"][1] >= 240 * 60 and out["timeout"] > 240 * 60  # the task outwaits the job
    assert out["pre_execute"] and out["upstream"] == ["plan_range"]


def test_emr_serverless_runner_with_a_local_warehouse_is_an_import_error_that_says_the_fix():
    result = _emr_task({"CHURN_WAREHOUSE": "/tmp/warehouse"})
    assert result.returncode != 0
    assert "CHURN_WAREHOUSE=/tmp/warehouse is a folder of the Airflow worker" in result.stderr
    assert "set CHURN_WAREHOUSE=s3://bucket/prefix" in result.stderr


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == set(DAG_IDS)


@pytest.mark.parametrize(
    ("dag_id", "schedule"),
    [("churn_features", "0 0 * * *"), ("churn_retrain", "0 0 * * 1"), ("churn_scoring", None), ("churn_monitoring", None),
     ("churn_outreach", None)],
)
def test_schedules_catchup_and_concurrency(dagbag, dag_id, schedule):
    dag = dagbag.dags[dag_id]
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert "churn" in dag.tags and len(dag.tags) >= 2
    assert dag.doc_md and dag_id in dag.doc_md
    if schedule:
        assert type(dag.timetable).__name__ == "CronTriggerTimetable"  # logical date = the day it runs for
        assert dag.timetable.expression == schedule
        assert str(dag.timetable.timezone) in ("UTC", "Timezone('UTC')")
    else:  # one run per partition key (the day or range published), shown in the UI
        assert type(dag.timetable).__name__ == "PartitionedAssetTimetable"
        assert dag.timetable.partition_mapper_config == {}  # identity: the downstream key is the upstream one


def test_every_task_retries_with_exponential_backoff_and_alerts(dagbag):
    for dag_id in DAG_IDS:
        for task in dagbag.dags[dag_id].tasks:
            if task.task_id == "check_alerts":  # fails on purpose after its alerts were sent: no retry, no 2nd alert
                assert task.retries == 0 and not task.on_failure_callback
                continue
            assert task.retries >= 2, task
            assert task.retry_exponential_backoff >= 2, task
            assert task.max_retry_delay and task.max_retry_delay <= timedelta(hours=1), task
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert alert_on_failure in callbacks, task


def test_scoring_is_scheduled_on_the_asset_features_produces(dagbag):
    features, retrain, scoring, monitoring = (dagbag.dags[d] for d in DAG_IDS[:4])
    build = features.get_task("build_features")
    assert {a.uri for a in build.outlets} == {INSTANCES_W1.asset_uri, INSTANCES_MODELING.asset_uri}
    assert scoring.timetable.asset_condition.uri == INSTANCES_W1.asset_uri
    assert {a.uri for a in scoring.get_task("score").outlets} == {PREDICTIONS.asset_uri}
    assert {a.uri for a in retrain.get_task("retrain").outlets} == {MODEL_REGISTRY_URI}
    # monitoring runs on new outcomes OR new predictions: performance does not wait for scoring
    condition = monitoring.timetable.asset_condition
    assert type(condition).__name__ == "AssetAny"
    assert {asset.uri for asset in condition.objects} == {INSTANCES_MODELING.asset_uri, PREDICTIONS.asset_uri}
    assert {a.uri for a in monitoring.get_task("monitor").outlets} == {MODEL_PERFORMANCE.asset_uri}
    assert {type(t.timetable).__name__ for t in (scoring, monitoring)} == {"PartitionedAssetTimetable"}


def test_wiring(dagbag):
    features, retrain, scoring, monitoring = (dagbag.dags[d] for d in DAG_IDS[:4])
    assert features.get_task("build_features").downstream_task_ids == set()  # Iceberg commits need no registration
    assert features.get_task("build_features").max_active_tis_per_dag == 1  # one local Spark job at a time
    assert retrain.get_task("wait_for_features").downstream_task_ids == {"retrain"}
    assert retrain.get_task("wait_for_features").mode == "reschedule"
    assert retrain.get_task("retrain").downstream_task_ids == {"maintain_tables"}
    assert retrain.get_task("maintain_tables").trigger_rule == "all_done"  # maintenance runs whatever retrain did
    assert scoring.get_task("score").downstream_task_ids == set()
    assert set(features.params.keys()) == {"start", "end", "rescore"}
    assert features.params["start"] is None and features.params["rescore"] is False
    assert scoring.params["dts"] == [] and monitoring.params["dts"] == []
    assert monitoring.get_task("monitor").downstream_task_ids == {"check_alerts"}




def test_outreach_learns_from_outcomes_then_assigns_the_scored_days(dagbag):
    outreach = dagbag.dags["churn_outreach"]
    condition = outreach.timetable.asset_condition
    assert {asset.uri for asset in condition.objects} == {INSTANCES_MODELING.asset_uri, PREDICTIONS.asset_uri}
    assert outreach.get_task("learn").downstream_task_ids == {"assign"}
    assert outreach.get_task("assign").trigger_rule == "all_done"  # contacts never wait on a failed learning
    assert {a.uri for a in outreach.get_task("assign").outlets} == {OUTREACH_ASSIGNMENTS.asset_uri}
    assert {a.uri for a in outreach.get_task("learn").outlets} == {OUTREACH_EFFECT.asset_uri}
    assert outreach.params["assign"] == [] and outreach.params["learn"] == []


def test_every_dag_has_a_one_line_description_in_the_dag_list(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.description and "\n" not in dag.description and len(dag.description) < 120, dag_id
        assert dag.doc_md and dag.description in dag.doc_md
