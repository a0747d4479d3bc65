"""`spark-submit etl_jobs/build_features.py` (as on EMR or a cluster) is first class: the session keeps the
master and settings spark-submit gave it, and the partitions equal those of an in-process run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from churn.core.settings import PROJECT_ROOT, Settings
from churn.core.tables import FEATURE_TABLES
from churn.core.warehouse import list_partitions, read_partitions
from churn.dev.simulator import simulate
from churn.etl_jobs.build_features import build_features

START = date(2026, 1, 5)


def test_spark_submit_keeps_its_master_and_publishes_the_same_rows(tmp_path, spark):
    submitted_root, inprocess_root = tmp_path / "submitted", tmp_path / "inprocess"
    submitted = Settings(warehouse=str(submitted_root), _env_file=None)
    simulate(START, 40, 30, 5, submitted, progress=False)
    shutil.copytree(submitted_root, inprocess_root)
    inprocess = Settings(warehouse=str(inprocess_root), _env_file=None)
    day = START + timedelta(days=38)

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURN_", "PYSPARK_GATEWAY", "SPARK_LOCAL_IP"))}
    env |= {"CHURN_WAREHOUSE": str(submitted_root), "PYTHONPATH": str(PROJECT_ROOT),
            "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    submit = Path(sys.executable).parent / "spark-submit"
    result = subprocess.run(
        [str(submit), "--master", "local[1]", "--conf", "spark.driver.host=127.0.0.1",
         "--conf", "spark.driver.bindAddress=127.0.0.1", "--conf", "spark.ui.enabled=false",
         "--conf", "spark.sql.shuffle.partitions=3", str(PROJECT_ROOT / "etl_jobs" / "build_features.py"),
         "--ds", day.isoformat()],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "spark engine ready (master local[1])" in result.stderr + result.stdout  # not the settings' local[2]

    build_features(day, day, inprocess, spark=spark)
    for name in FEATURE_TABLES:
        assert list_partitions(name, submitted) == list_partitions(name, inprocess) == [day]
        pd.testing.assert_frame_equal(read_partitions(name, [day], submitted), read_partitions(name, [day], inprocess))
