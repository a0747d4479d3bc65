"""Maintenance (churn maintain / the weekly maintain_tables task): old snapshots and the files only they
used go, the current data and anything younger than the retention stay, abandoned staging is removed."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from churn import jobs
from churn.core.settings import Settings
from churn.core.table_maintenance import expire_snapshots
from churn.core.warehouse import PartitionNotFound, current_snapshot_id, read_partition, write_partition
from churn.dev.torture import version_frame, whole

DAY = date(2026, 3, 2)


def _data_files(settings) -> set[str]:
    return {str(p) for p in Path(settings.warehouse, "features", "instances_w1", "data").rglob("*.parquet")}


def test_old_snapshots_and_their_files_are_removed_the_current_data_stays(tmp_path):
    settings = Settings(warehouse=str(tmp_path / "warehouse"), snapshot_retention_days=7, _env_file=None)
    for version in "aba":
        write_partition("instances_w1", DAY, version_frame(settings, DAY, version), settings)
    first_files = _data_files(settings)
    assert len(first_files) == 3  # every rewrite left its predecessor's file for time travel
    old = current_snapshot_id("instances_w1", settings)
    write_partition("instances_w1", DAY, version_frame(settings, DAY, "b"), settings)
    stale_staging = Path(settings.warehouse, "_staging", "instances_w1", "killed-run")
    stale_staging.mkdir(parents=True)
    (stale_staging / "part-0.parquet").write_bytes(b"x")
    hours_ago = (datetime.now(UTC) - timedelta(hours=12)).timestamp()
    os.utime(stale_staging / "part-0.parquet", (hours_ago, hours_ago))

    now = jobs.maintain_tables(settings)
    assert now.tables[0]["expired_snapshots"] == 0  # every snapshot is younger than 7 days
    assert now.staging_removed == [] and stale_staging.exists()  # a run may still be writing it
    summary = jobs.maintain_tables(settings, now=datetime.now(UTC) + timedelta(days=8))
    w1 = next(t for t in summary.tables if t["table"] == "instances_w1")
    assert w1["expired_snapshots"] >= 3 and w1["deleted_files"] == 3
    assert whole(read_partition("instances_w1", DAY, settings)) == "b"  # the current snapshot is never expired
    assert len(_data_files(settings)) == 1
    with pytest.raises(PartitionNotFound, match="expired"):
        read_partition("instances_w1", DAY, settings, snapshot_id=old)
    assert summary.staging_removed == ["instances_w1/killed-run"] and not stale_staging.exists()


def test_churn_maintain_prints_the_summary(tmp_path):
    import json

    from typer.testing import CliRunner

    from churn.cli import app

    settings = Settings(warehouse=str(tmp_path / "warehouse"), _env_file=None)
    write_partition("instances_w1", DAY, version_frame(settings, DAY, "a"), settings)
    result = CliRunner().invoke(app, ["maintain", "--json"], env={"CHURN_WAREHOUSE": settings.warehouse})
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["retention_days"] == 7 and {t["table"] for t in summary["tables"]} >= {"instances_w1"}


def test_the_inputs_a_day_was_built_from_outlive_its_snapshot_and_go_with_a_rewrite(tmp_path, monkeypatch):
    """instances_modeling reuses instances_w1 days three weeks old: their fingerprints are table properties, kept
    when the snapshots that wrote them expire, dropped when the day is rewritten without one, bounded in number."""
    from churn.core import warehouse

    settings = Settings(warehouse=str(tmp_path / "warehouse"), _env_file=None)
    other = DAY + timedelta(days=1)
    warehouse.write_partitions("instances_w1", {d: version_frame(settings, d, "a") for d in (DAY, other)}, settings,
                               day_inputs={DAY: "k1", other: "k2"})
    write_partition("instances_w1", DAY, version_frame(settings, DAY, "b"), settings)  # rewritten, no fingerprint
    expire_snapshots("instances_w1", settings, retention_days=1, now=datetime.now(UTC) + timedelta(days=30))
    assert warehouse.day_inputs("instances_w1", settings) == {other: "k2"}

    monkeypatch.setattr(warehouse, "DAY_INPUTS_KEPT", 2)
    later = {other + timedelta(days=i): version_frame(settings, other + timedelta(days=i), "a") for i in (1, 2)}
    warehouse.write_partitions("instances_w1", later, settings, day_inputs=dict.fromkeys(later, "k3"))
    assert warehouse.day_inputs("instances_w1", settings) == dict.fromkeys(later, "k3")  # the newest two


KILLED = """
import os, sys
from datetime import date
from churn.core.settings import Settings
from churn.dev.torture import version_frame
settings = Settings(warehouse=sys.argv[1], _env_file=None)
if sys.argv[2] == "write":  # killed after its data files are written, before its commit
    from pyiceberg.table import Transaction
    from churn.core.warehouse import write_partition
    Transaction.commit_transaction = lambda self: os._exit(9)
    write_partition("instances_w1", date(2026, 3, 2), version_frame(settings, date(2026, 3, 2), "b"), settings)
else:  # maintenance killed after its expiry commit, before it deletes the files only expired snapshots used
    from datetime import UTC, datetime, timedelta
    from pyiceberg.io.pyarrow import PyArrowFileIO
    from churn import jobs
    PyArrowFileIO.delete = lambda self, location: os._exit(9)
    jobs.maintain_tables(settings, now=datetime.now(UTC) + timedelta(days=8))
"""


def _killed(settings, step: str) -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", KILLED, settings.warehouse, step], capture_output=True, timeout=120)
    assert result.returncode == 9, result.stderr[-2000:]


def test_files_a_killed_writer_or_a_killed_maintenance_left_are_removed_by_the_next_maintenance(tmp_path):
    settings = Settings(warehouse=str(tmp_path / "warehouse"), snapshot_retention_days=7, _env_file=None)
    for version in "ab":
        write_partition("instances_w1", DAY, version_frame(settings, DAY, version), settings)
    committed = _data_files(settings)
    _killed(settings, "write")
    orphans = _data_files(settings) - committed
    assert orphans and whole(read_partition("instances_w1", DAY, settings)) == "b"
    young = jobs.maintain_tables(settings)  # a writer may still be running: its files are kept a day
    assert _data_files(settings) >= orphans and young.tables[0]["orphans_deleted"] == 0

    _killed(settings, "maintain")  # expired the first snapshot, then died before deleting its file
    later = jobs.maintain_tables(settings, now=datetime.now(UTC) + timedelta(days=8))
    w1 = next(t for t in later.tables if t["table"] == "instances_w1")
    assert w1["orphans_deleted"] == len(orphans) + 1  # the killed writer's files and the expired snapshot's file
    assert len(_data_files(settings)) == 1 and whole(read_partition("instances_w1", DAY, settings)) == "b"


def test_a_job_prints_one_line_for_a_person_and_the_whole_summary_with_json(tmp_path):
    from typer.testing import CliRunner

    from churn.cli import app

    settings = Settings(warehouse=str(tmp_path / "warehouse"), _env_file=None)
    write_partition("instances_w1", DAY, version_frame(settings, DAY, "a"), settings)
    result = CliRunner().invoke(app, ["maintain"], env={"CHURN_WAREHOUSE": settings.warehouse}, terminal_width=80)
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert line.startswith("maintain: ") and "snapshots expired" in line and "{" not in line
