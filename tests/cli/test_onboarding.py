"""A new product's first day: raw files landed elsewhere (some as symbolic links), no warehouse yet."""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from churn.core import contract, storage
from churn.core.settings import Settings
from churn.dev.simulator import simulate

from .test_errors import churn, error_line

START = date(2026, 3, 1)


def _link_tree(source: Path, target: Path) -> int:
    """``target`` mirrors ``source`` with every file a symbolic link (how a mounted or shared drop often looks)."""
    links = 0
    for path in source.rglob("*.parquet"):
        link = target / path.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
        links += 1
    return links


def test_the_feature_job_reads_symlinked_raw_files_and_creates_the_warehouse(tmp_path):
    landed = Settings(_env_file=None, warehouse=str(tmp_path / "landed"))
    simulate(START, 10, 30, 5, landed, progress=False)
    assert _link_tree(tmp_path / "landed" / "raw", tmp_path / "drop") > 10
    warehouse = tmp_path / "new" / "warehouse"  # neither it nor its parent exists yet
    day = START + timedelta(days=8)
    result = churn("features", "--ds", day.isoformat(), "--table", "instances_w1", "--json", env={
        "CHURN_WAREHOUSE": str(warehouse), "CHURN_FEATURE_ENGINE": "duckdb",
        "CHURN_RAW_EVALUATIONS": str(tmp_path / "drop" / "evaluations"),
        "CHURN_RAW_EVENTS": str(tmp_path / "drop" / "events")})
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["tables"]["instances_w1"]["rows"]
    evaluations = pd.read_parquet(tmp_path / "landed" / "raw" / "evaluations")
    cohort = int((pd.to_datetime(evaluations["eval_start_date"]).dt.date == day - timedelta(days=7)).sum())
    assert rows == cohort > 0 and warehouse.is_dir()  # every trial of the cohort, read through the links


def test_a_symlink_to_nothing_is_named_not_skipped(tmp_path):
    folder = tmp_path / "evaluations"
    folder.mkdir()
    os.symlink(tmp_path / "gone.parquet", folder / "part-0.parquet")
    fs = storage.filesystem(str(folder), Settings(_env_file=None))
    with pytest.raises(contract.DataContractError, match=r"part-0.parquet is a symbolic link to .*gone.parquet"):
        contract.data_files(fs, str(folder))


def test_a_job_that_only_reads_still_refuses_a_warehouse_that_does_not_exist(tmp_path):
    result = churn("score", "--ds", "2026-03-09", env={"CHURN_WAREHOUSE": str(tmp_path / "typo")})
    assert result.returncode == 2 and "does not exist: check CHURN_WAREHOUSE" in error_line(result)
