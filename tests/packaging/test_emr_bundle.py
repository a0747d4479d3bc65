"""`make emr-bundle` builds what an EMR Serverless job runs: the packed environment, unpacked as
``./environment`` the way ``spark.archives=…#environment`` does, runs the uploaded entry point under
spark-submit, with pyspark coming from Spark itself (as on EMR: the archive carries none). spark-submit is
first class: the session keeps the master it gave, and the partitions equal those of an in-process run."""

from __future__ import annotations

import os
import sys
import tarfile
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyspark
import pytest

from churn.core.settings import Settings
from churn.core.tables import FEATURE_TABLES
from churn.core.warehouse import list_partitions, read_partitions
from churn.dev.simulator import simulate
from churn.etl_jobs.build_features import build_features
from churn.ops.emr_bundle import build_bundle, upload_instructions

pytestmark = pytest.mark.slow
START = date(2026, 1, 5)


def test_the_bundle_runs_the_feature_job_under_spark_submit_like_emr(tmp_path, spark):
    import subprocess

    # make emr-bundle compiles and compresses more; the files in the archive are the same
    bundle = build_bundle(tmp_path / "emr", compile_bytecode=False, compress_level=1)
    assert {"archive", "entry_point"} <= set(bundle)
    instructions = upload_instructions(Settings(warehouse="s3://data/churn", _env_file=None), bundle)
    assert f"aws s3 cp {bundle['archive']} s3://data/churn/code/churn-env.tar.gz" in instructions

    job = tmp_path / "job"  # the job's working directory: the archive unpacked as ./environment
    with tarfile.open(bundle["archive"]) as archive:
        archive.extractall(job / "environment", filter="tar")
    python = "./environment/bin/python"
    check = subprocess.run([python, "-c", "import importlib.util as u; print(u.find_spec('pyspark'), "
                            "u.find_spec('airflow'))"], cwd=job, capture_output=True, text=True, check=True)
    assert check.stdout.split() == ["None", "None"]  # Spark brings pyspark; Airflow stays with Airflow

    submitted_root, inprocess_root = tmp_path / "submitted", tmp_path / "inprocess"
    simulate(START, 40, 30, 5, Settings(warehouse=str(submitted_root), _env_file=None), progress=False)
    day = START + timedelta(days=38)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURN_", "PYSPARK", "SPARK_", "VIRTUAL_ENV",
                                                                     "PYTHON"))}
    env |= {"SPARK_HOME": str(Path(pyspark.__file__).parent), "PYSPARK_PYTHON": python,
            "PYSPARK_DRIVER_PYTHON": python, "SPARK_LOCAL_IP": "127.0.0.1", "CHURN_WAREHOUSE": str(submitted_root)}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "spark-submit"), "--master", "local[1]", "--conf", "spark.ui.enabled=false",
         str(bundle["entry_point"]), "--ds", day.isoformat()],
        env=env, cwd=job, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "environment/lib/python3.11/site-packages/churn/sql" in result.stdout + result.stderr  # the job used the archive's code
    assert "spark engine ready (master local[1])" in result.stderr + result.stdout  # spark-submit's, not local[2]

    simulate(START, 40, 30, 5, Settings(warehouse=str(inprocess_root), _env_file=None), progress=False)
    inprocess = Settings(warehouse=str(inprocess_root), _env_file=None)
    build_features(day, day, inprocess, spark=spark)
    submitted = Settings(warehouse=str(submitted_root), _env_file=None)
    for name in FEATURE_TABLES:
        assert list_partitions(name, submitted) == [day]
        pd.testing.assert_frame_equal(read_partitions(name, [day], submitted), read_partitions(name, [day], inprocess))


def test_the_amazon_linux_build_copies_what_exists_and_runs_the_same_module():
    """emr/Dockerfile cannot be built here (no Docker engine): check what it refers to instead."""
    import re

    from churn.core.settings import PROJECT_ROOT
    from churn.ops import emr_bundle

    text = (PROJECT_ROOT / "emr" / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in source.split():
            assert (PROJECT_ROOT / path).exists(), path
    run = re.search(r"python -m (churn\.ops\.emr_bundle) (.+)$", text, re.M)
    assert run and run.group(1) == emr_bundle.__name__
    args = emr_bundle.parser().parse_args(run.group(2).split())  # exits 2 on a flag the module does not take
    assert (args.out, args.python) == ("/output", "/usr/local/bin/python3.11")
    outputs = re.search(r"^COPY --from=build (.+) /$", text, re.M).group(1).split()
    assert [Path(p).name for p in outputs] == ["churn-env.tar.gz", "build_features.py", "upload.txt"]
