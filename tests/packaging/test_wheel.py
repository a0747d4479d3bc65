"""The documented deploy: a wheel installed into a fresh virtual environment, outside the checkout, runs
the jobs with no source tree (the SQL, the feature configuration and the DDL are package data) and
without Airflow (the ``[airflow]`` extra is not installed), beside another project's ``models`` and
``etl_jobs`` packages: everything of ours installs under ``churn``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from churn.core.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=900, **kwargs)
    assert result.returncode == 0, f"{args}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


def _summary(stdout: str) -> dict:
    """The JSON summary a job command prints last."""
    return json.loads(stdout[stdout.index("{") :])


def test_installed_wheel_runs_simulate_features_train_and_score_without_the_checkout(tmp_path):
    dist, venv, work = tmp_path / "dist", tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(PROJECT_ROOT)])
    (wheel,) = dist.glob("churn_trials-*.whl")
    _run([sys.executable, "-m", "venv", str(venv)])
    site = Path(_run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
                     ).stdout.strip())
    for other in ("models", "etl_jobs"):  # another project's packages of those names (a Django app, an ML repo)
        (site / other).mkdir()
        (site / other / "__init__.py").write_text(f"OWNER = 'another project'  # {other}\n")
    # --no-compile: bytecode is written on first import instead; what is tested is what gets installed
    # the core only (no extras), at the versions this checkout tested (constraints.txt)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile",
          "-c", str(PROJECT_ROOT / "constraints.txt"), str(wheel)])

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CHURN_", "PYTHON", "PYSPARK", "VIRTUAL_ENV", "SPARK_"))}
    # the feature job on DuckDB: the wheel's Spark path is the EMR bundle's test (spark-submit of the installed code)
    env |= {"CHURN_WAREHOUSE": str(work / "warehouse"), "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}",
            "CHURN_FEATURE_ENGINE": "duckdb"}
    python = str(venv / "bin" / "python")
    probe = _run([python, "-c", "import churn.core.settings as s, importlib.util as u; "
                  "print(s.SQL_DIR); print(s.ENV_FILE); print(u.find_spec('airflow') is None); "
                  "print(u.find_spec('pyspark') is None); print(u.find_spec('churn').submodule_search_locations[0])"],
                 env=env, cwd=work)
    sql_dir, env_file, no_airflow, no_pyspark, package = probe.stdout.split()
    assert Path(sql_dir).is_relative_to(venv) and not Path(sql_dir).is_relative_to(PROJECT_ROOT)
    assert env_file == "None"  # no checkout, no .env: the environment is the configuration
    assert no_airflow == "True"  # the core does not pull Airflow in
    assert no_pyspark == "True"  # nor pyspark: the [spark] extra (DuckDB-engine and EMR workers need none)
    assert (Path(package) / "py.typed").exists()  # type checkers read the package's annotations

    top_level = {name.split("/")[0] for name in _run([python, "-c", "import importlib.metadata as m; "
                 "print('\\n'.join(str(f) for f in m.files('churn-trials')))"], env=env, cwd=work).stdout.split()}
    assert {n for n in top_level if not n.endswith(".dist-info") and n != ".."} == {"churn"}, top_level

    churn = str(venv / "bin" / "churn")
    _run([churn, "simulate", "--start", "2026-01-01", "--days", "60", "--instances-per-day", "50", "--no-progress"],
         env=env, cwd=work)
    features = _summary(_run([churn, "features", "--start", "2026-02-06", "--end", "2026-03-01", "--json"],
                             env=env, cwd=work).stdout)
    assert features["tables"]["instances_modeling"]["partitions"] == 24
    assert features["tables"]["instances_w1"]["rows"] > 0
    trained = _summary(_run([churn, "train", "--run-date", "2026-03-02", "--json"], env=env, cwd=work).stdout)
    assert trained["rows"]["train"] > 0 and Path(trained["report"]).is_relative_to(work)
    _run([churn, "score", "--start", "2026-02-24", "--end", "2026-03-01"], env=env, cwd=work)
    scored = _run([churn, "query", "-f", "json", "SELECT count(DISTINCT dt) AS days, count(*) AS n "
                   "FROM churn.instances_w1_scored"], env=env, cwd=work).stdout
    (row,) = json.loads(scored)
    by_dt = features["tables"]["instances_w1"]["rows_by_dt"]
    assert row == {"days": 6, "n": sum(n for dt, n in by_dt.items() if dt >= "2026-02-24")}
    others = _run([python, "-c", "import models, etl_jobs; print(models.OWNER, etl_jobs.OWNER, sep='|')"],
                  env=env, cwd=work).stdout.strip()
    assert others == "another project|another project"  # neither shadowed nor shadowing
