"""`churn doctor` against a deployment on moto's S3, Glue, Athena and EMR Serverless APIs (127.0.0.1):
every check passes on a healthy one, and each broken part fails its own check with a one-line reason."""

from __future__ import annotations

import urllib.request
from datetime import date, timedelta

import boto3
import pytest
from typer.testing import CliRunner

from churn.cli import app
from churn.core.settings import DEFAULT_FEATURE_CONFIG, Settings
from churn.core.tables import TABLES
from churn.dev.simulator import simulate
from churn.dev.synthetic import write_modeling
from churn.ops.catalog import apply_catalog

BUCKET = "doctor"
RUN_DATE = date(2026, 3, 2)
ROLE = "arn:aws:iam::123456789012:role/churn-emr"
CHECKS = ["settings", "warehouse", "raw tables", "label rate", "feature configuration", "champion", "catalog", "athena",
          "emr serverless"]


@pytest.fixture(scope="module")
def deployment(moto_server):
    """A healthy AWS-style deployment: raw data, a champion, the Glue catalog, Athena, an EMR application."""
    from churn.models.train import retrain

    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=30).close()
    env = {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1",
        "CHURN_DEPLOYMENT": "aws", "CHURN_WAREHOUSE": f"s3://{BUCKET}/churn", "CHURN_S3_ENDPOINT_URL": moto_server,
        "CHURN_AWS_ENDPOINT_URL": moto_server, "CHURN_TABLE_CATALOG": "glue", "CHURN_ATHENA_DATABASE": "churn_doctor",
        "CHURN_ATHENA_OUTPUT": f"s3://{BUCKET}/athena/", "CHURN_FEATURE_ENGINE": "duckdb",
        "CHURN_TRAINING_WINDOW_DAYS": "14", "CHURN_VALIDATION_DAYS": "7", "CHURN_SPARK_RUNNER": "emr_serverless",
        "CHURN_EMR_EXECUTION_ROLE_ARN": ROLE,
    }
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "CHURN_FEATURE_CONFIG", "CHURN_RAW_EVENTS",
                     "CHURN_RAW_EVALUATIONS", "CHURN_TABLE_CATALOG_URI", "CHURN_MODEL_NAME"):
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        emr = boto3.client("emr-serverless", endpoint_url=moto_server, region_name="us-east-1")
        env["CHURN_EMR_APPLICATION_ID"] = emr.create_application(name="churn", releaseLabel="emr-7.9.0",
                                                                 type="SPARK")["applicationId"]
        mp.setenv("CHURN_EMR_APPLICATION_ID", env["CHURN_EMR_APPLICATION_ID"])
        settings = Settings(_env_file=None)
        simulate(RUN_DATE - timedelta(days=20), 20, 10, 3, settings, progress=False)
        write_modeling(settings, RUN_DATE, 100)
        retrain(RUN_DATE, settings)
        apply_catalog(settings, list(TABLES))  # every table the registry declares
        s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
        for key in ("churn/code/build_features.py", "churn/code/churn-env.tar.gz"):  # what make emr-bundle uploads
            s3.put_object(Bucket=BUCKET, Key=key, Body=b"uploaded")
        yield env


def doctor(env: dict, *args: str, **changes: str | None):
    run_env = {**env, **changes}
    return CliRunner().invoke(app, ["doctor", "--ds", RUN_DATE.isoformat(), *args], env=run_env)


def lines(result) -> dict[str, str]:
    out = {}
    for line in result.output.splitlines():
        if line[:1] in "✓✗–" and ": " in line:
            name, detail = line[2:].split(": ", 1)
            out[name] = line[0] + " " + detail
    return out


def test_a_healthy_aws_deployment_passes_every_check(deployment):
    result = doctor(deployment)
    assert result.exit_code == 0, result.output
    found = lines(result)
    assert list(found) == CHECKS
    assert all(v.startswith("✓") for v in found.values()), result.output
    assert "verified" in found["champion"] and "every table matches the DDL" in found["catalog"]
    assert result.output.rstrip().endswith("all checks passed")
    s3 = boto3.client("s3", endpoint_url=deployment["CHURN_S3_ENDPOINT_URL"], region_name="us-east-1")
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="churn/_doctor/")  # the probe is removed


def _drop_events_day(env):
    s3 = boto3.client("s3", endpoint_url=env["CHURN_S3_ENDPOINT_URL"], region_name="us-east-1")
    day = (RUN_DATE - timedelta(days=2)).isoformat()
    for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"churn/raw/events/dt={day}/").get("Contents", []):
        s3.copy_object(Bucket=BUCKET, Key=item["Key"].replace("churn/raw", "moved"),
                       CopySource={"Bucket": BUCKET, "Key": item["Key"]})
        s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    return lambda: [s3.copy_object(Bucket=BUCKET, Key=i["Key"].replace("moved", "churn/raw"),
                                   CopySource={"Bucket": BUCKET, "Key": i["Key"]})
                    for i in s3.list_objects_v2(Bucket=BUCKET, Prefix="moved/")["Contents"]]


def _drop_glue_table(env):
    glue = boto3.client("glue", endpoint_url=env["CHURN_AWS_ENDPOINT_URL"], region_name="us-east-1")
    table = glue.get_table(DatabaseName="churn_doctor", Name="events")["Table"]
    glue.delete_table(DatabaseName="churn_doctor", Name="events")
    keep = ("Name", "Description", "StorageDescriptor", "PartitionKeys", "TableType", "Parameters")
    return lambda: glue.create_table(DatabaseName="churn_doctor", TableInput={k: table[k] for k in keep if k in table})


@pytest.fixture()
def bad_config(tmp_path):
    path = tmp_path / "features.yaml"
    path.write_text(DEFAULT_FEATURE_CONFIG.read_text().replace("issue_created", "issue_creatd"))
    return str(path)


@pytest.mark.parametrize(("check", "change", "reason"), [
    ("settings", {"CHURN_EMR_EXECUTION_ROLE_ARN": ""}, "CHURN_SPARK_RUNNER=emr_serverless needs CHURN_EMR_EXECUTION_ROLE_ARN"),
    ("settings", {"CHURN_TRAINING_WINDOW_DAYS": "3"}, "invalid setting: CHURN_TRAINING_WINDOW_DAYS"),
    ("warehouse", {"CHURN_WAREHOUSE": "s3://no-such-bucket/churn"}, "NoSuchBucket"),
    ("warehouse", {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                   "AWS_CONFIG_FILE": "/nonexistent"}, "no AWS credentials"),
    ("raw tables", _drop_events_day, "events: 1 of the last 7 days have no partition"),
    ("feature configuration", "bad_config", "number_of_issues got no event"),
    ("champion", {"CHURN_MODEL_NAME": "never_trained"}, "no champion model"),
    ("catalog", _drop_glue_table, "churn_doctor: missing: events; run `churn catalog apply`"),
    ("athena", {"CHURN_ATHENA_WORKGROUP": "nope"}, "workgroup nope"),
    ("emr serverless", {"CHURN_EMR_APPLICATION_ID": "00nosuchapp"}, "application 00nosuchapp"),
    ("emr serverless", {"CHURN_EMR_ARCHIVE": "s3://doctor/code/missing.tar.gz"}, "not uploaded: archive"),
])
def test_each_broken_part_fails_its_check_with_a_one_line_reason(deployment, request, check, change, reason):
    undo = None
    if callable(change):
        undo, change = change(deployment), {}
    elif isinstance(change, str):
        change = {"CHURN_FEATURE_CONFIG": request.getfixturevalue(change)}
    try:
        result = doctor(deployment, "--check", check, **change)
    finally:
        if undo:
            undo()
    assert result.exit_code == 1, result.output
    found = lines(result)
    assert list(found) == [check] and found[check].startswith("✗") and reason in found[check], result.output
    assert "\n" not in found[check]
    assert "check(s) failed" in result.output.rstrip().splitlines()[-1]


def test_a_raw_label_rate_outside_the_range_fails_before_anything_is_trained(deployment):
    later = (RUN_DATE + timedelta(days=25)).isoformat()  # the simulated cohorts' outcomes are known by then
    healthy = lines(doctor(deployment, "--check", "label rate", "--ds", later))["label rate"]
    assert healthy.startswith("✓") and "within 0.01..0.6" in healthy, healthy
    rate = float(healthy.split("label rate ")[1].split()[0])
    result = doctor(deployment, "--check", "label rate", "--ds", later, CHURN_LABEL_RATE_RANGE="0.90,0.99")
    found = lines(result)["label rate"]
    assert result.exit_code == 1 and found.startswith(f"✗ the raw label rate is {rate:.3f}")
    assert "outside the plausible range 0.9..0.99" in found and "set CHURN_LABEL_RATE_RANGE" in found


def test_a_failed_check_does_not_stop_the_others(deployment):
    result = doctor(deployment, CHURN_MODEL_NAME="never_trained", CHURN_ATHENA_WORKGROUP="nope")
    found = lines(result)
    assert result.exit_code == 1 and list(found) == CHECKS
    assert [k for k, v in found.items() if v.startswith("✗")] == ["champion", "athena"]
    assert result.output.rstrip().endswith("2 check(s) failed")


def test_the_doctor_writes_nothing_but_its_probe(deployment):
    s3 = boto3.client("s3", endpoint_url=deployment["CHURN_S3_ENDPOINT_URL"], region_name="us-east-1")
    keys = lambda: sorted((o["Key"], o["ETag"]) for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))  # noqa: E731
    before = keys()
    assert doctor(deployment).exit_code == 0
    assert keys() == before


def test_a_local_deployment_passes_and_skips_what_it_does_not_use(tmp_path, monkeypatch):
    from churn.models.train import retrain

    for name in [n for n in __import__("os").environ if n.startswith("CHURN_")]:
        monkeypatch.delenv(name)
    env = {"CHURN_WAREHOUSE": str(tmp_path / "warehouse"), "CHURN_TRAINING_WINDOW_DAYS": "14",
           "CHURN_VALIDATION_DAYS": "7"}
    settings = Settings(_env_file=None, warehouse=env["CHURN_WAREHOUSE"], training_window_days=14, validation_days=7)
    simulate(RUN_DATE - timedelta(days=10), 10, 10, 3, settings, progress=False)
    write_modeling(settings, RUN_DATE, 100)
    retrain(RUN_DATE, settings)
    result = doctor(env)
    assert result.exit_code == 0, result.output
    found = lines(result)
    assert [k for k, v in found.items() if v.startswith("✓")] == CHECKS[:7]
    assert found["athena"].startswith("– not used") and found["emr serverless"].startswith("– not used")


def test_spark_in_process_without_pyspark_fails_the_settings_check_naming_the_extra(tmp_path, monkeypatch):
    """The core installs without pyspark (the [spark] extra): a worker that would run Spark here is told so."""
    import sys

    from churn.ops.doctor import Fail, check_settings

    monkeypatch.setitem(sys.modules, "pyspark", None)  # `import pyspark` raises ImportError, as without the extra
    settings = Settings(_env_file=None, deployment="local", warehouse=str(tmp_path), table_catalog="sql",
                        feature_engine="spark", spark_runner="local")
    with pytest.raises(Fail, match=r"pyspark is not installed: pip install 'churn-trials\[spark\]'"):
        check_settings(settings)
    assert "features on duckdb" in check_settings(settings.model_copy(update={"feature_engine": "duckdb"}))


def test_a_job_that_needs_pyspark_without_it_names_the_extra_in_one_line(monkeypatch):
    import builtins

    from churn.cli.output import BAD_INPUT, describe
    from churn.core.spark import require_pyspark

    real = builtins.__import__
    monkeypatch.setattr(builtins, "__import__",
                        lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name)) if name == "pyspark"
                        else real(name, *a, **k))
    with pytest.raises(ImportError) as caught:
        require_pyspark()
    code, line = describe(caught.value)
    assert code == BAD_INPUT and "pip install 'churn-trials[spark]'" in line and "\n" not in line
