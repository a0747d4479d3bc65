"""A lost catalog loses no table and a copied warehouse never changes the original: jobs refuse to write around
either, `churn doctor` names the repair, and `churn catalog recover` makes the catalog true to the folders again."""

from __future__ import annotations

import hashlib
import os
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from churn.core.iceberg_catalog import CatalogStateError, _catalog, metadata_files, recover, table_problems
from churn.core.settings import Settings
from churn.core.tables import table
from churn.core.warehouse import list_partitions, read_partitions, write_partition
from churn.dev.synthetic import write_modeling

RUN_DATE = date(2026, 3, 2)


def _lose_catalog(settings: Settings) -> None:
    """Delete the SQLite catalog file, as a person or a cleanup would, and open it again as the next process does."""
    os.remove(Path(settings.warehouse) / "_catalog" / "iceberg.db")
    _catalog.cache_clear()


def _checksums(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture()
def published(tmp_path):
    settings = Settings(_env_file=None, warehouse=str(tmp_path / "warehouse"), training_window_days=14)
    frame = write_modeling(settings, RUN_DATE, 30)
    return settings, frame


def test_a_lost_catalog_refuses_reads_and_writes_and_recover_registers_every_table(published):
    settings, _ = published
    days = list_partitions("instances_modeling", settings)
    before = read_partitions("instances_modeling", days, settings)
    files = metadata_files(table("instances_modeling"), settings)
    _lose_catalog(settings)

    with pytest.raises(CatalogStateError, match="catalog was lost or replaced; run `churn catalog recover`"):
        read_partitions("instances_modeling", days, settings)  # never "not published"
    with pytest.raises(CatalogStateError, match="nothing was written"):
        write_partition("instances_modeling", RUN_DATE + timedelta(days=1), before.head(0).drop(columns="dt"),
                        settings)
    assert metadata_files(table("instances_modeling"), settings) == files  # no new table over the old folder
    assert any("churn catalog recover" in p for p in table_problems(settings))  # what `churn doctor` reports

    assert recover(settings)["instances_modeling"].startswith("registered from " + files[-1][1].rsplit("/", 1)[-1])
    assert list_partitions("instances_modeling", settings) == days
    assert read_partitions("instances_modeling", days, settings).equals(before)
    assert recover(settings)["instances_modeling"] == "ok" and table_problems(settings) == []


def test_recover_refuses_to_guess_between_two_newest_metadata_files(published):
    settings, _ = published
    t = table("instances_modeling")
    newest = metadata_files(t, settings)[-1][1]
    version = newest.rsplit("/", 1)[-1].split("-", 1)[0]
    shutil.copy(newest, newest.rsplit("/", 1)[0] + f"/{version}-00000000-0000-0000-0000-000000000000.metadata.json")
    _lose_catalog(settings)
    with pytest.raises(CatalogStateError, match="share the newest version"):
        recover(settings, ["instances_modeling"])
    assert recover(settings, ["instances_modeling"], metadata=newest)["instances_modeling"].startswith("registered")


def test_every_job_in_a_copied_warehouse_leaves_the_original_untouched(tmp_path):
    """The copy's jobs refuse until `churn catalog recover`; after it the copy has its own tables and every job
    (features, train, score, monitor, outreach, maintain) runs in it without changing one byte of the original."""
    from churn.dev.simulator import simulate
    from churn.jobs.features import build_features
    from churn.jobs.maintenance import maintain_tables
    from churn.jobs.monitor import monitor
    from churn.jobs.outreach import assign_outreach
    from churn.jobs.retrain import retrain
    from churn.jobs.score import score

    start, run_date = date(2026, 1, 5), date(2026, 3, 20)
    original = Settings(_env_file=None, warehouse=str(tmp_path / "original"), feature_engine="duckdb",
                        training_window_days=30, validation_days=7)
    simulate(start, 76, 40, 3, original, progress=False)
    build_features(original, run_date - timedelta(days=40), run_date)
    retrain(original, run_date)
    score(original, [run_date])
    sums = _checksums(Path(original.warehouse))
    rows = {t: len(read_partitions(t, list_partitions(t, original), original))
            for t in ("instances_w1", "instances_modeling", "instances_w1_scored")}

    shutil.copytree(original.warehouse, tmp_path / "copy", symlinks=True)
    copy = original.model_copy(update={"warehouse": str(tmp_path / "copy")})
    with pytest.raises(CatalogStateError, match="copied warehouse still points at the original's files"):
        build_features(copy, run_date + timedelta(days=1), run_date + timedelta(days=1))
    with pytest.raises(CatalogStateError, match="run `churn catalog recover` in the copy"):
        maintain_tables(copy)
    assert _checksums(Path(original.warehouse)) == sums

    assert all(v.startswith(("relocated", "absent")) for v in recover(copy).values())
    assert table_problems(copy) == []
    for t, n in rows.items():
        assert len(read_partitions(t, list_partitions(t, copy), copy)) == n  # the copy kept every row
    following = run_date + timedelta(days=1)
    build_features(copy, following, following)
    retrain(copy, following)
    score(copy, [following])
    monitor(copy, performance_days=[following], drift_days=[following])
    assign_outreach(copy, [following])
    maintain_tables(copy, now=None)
    assert _checksums(Path(original.warehouse)) == sums
    for t, n in rows.items():
        assert len(read_partitions(t, list_partitions(t, original), original)) == n


def test_a_damaged_catalog_file_is_named_and_recover_rebuilds_it(published):
    settings, _ = published
    days = list_partitions("instances_modeling", settings)
    path = Path(settings.warehouse) / "_catalog" / "iceberg.db"
    path.write_bytes(b"not a database" * 100)
    _catalog.cache_clear()
    with pytest.raises(CatalogStateError, match=r"iceberg.db is damaged \(file is not a database\): move it aside"):
        list_partitions("instances_modeling", settings)
    path.rename(path.with_suffix(".damaged"))
    _catalog.cache_clear()
    recover(settings)
    assert list_partitions("instances_modeling", settings) == days


def test_a_truncated_metadata_file_is_named_and_the_one_before_it_can_be_registered(published):
    settings, frame = published
    t = table("instances_modeling")
    days = list_partitions(t, settings)
    write_partition(t, RUN_DATE, frame.head(5).drop(columns="true_p"), settings)  # one commit more
    files = metadata_files(t, settings)
    newest = Path(files[-1][1])
    newest.write_bytes(newest.read_bytes()[:300])
    with pytest.raises(CatalogStateError, match="current metadata file .* is damaged .* `churn catalog recover --table "
                                                "instances_modeling --metadata PATH`"):
        list_partitions(t, settings)
    assert recover(settings, [t.name], metadata=files[-2][1])[t.name].startswith("registered")
    assert list_partitions(t, settings) == days  # readable again, as of the commit before


def test_a_missing_data_file_names_the_day_to_publish_again(published):
    settings, _ = published
    day = list_partitions("instances_modeling", settings)[-1]
    folder = Path(table("instances_modeling").location(settings)) / "data" / f"dt={day}"
    kept = read_partitions("instances_modeling", [day], settings)
    for f in folder.glob("*.parquet"):
        f.unlink()
    with pytest.raises(CatalogStateError, match=f"a file of its current snapshot is missing .* publish dt={day} again"):
        read_partitions("instances_modeling", [day], settings)
    write_partition("instances_modeling", day, kept.drop(columns="dt"), settings)  # the rerun replaces the day whole
    assert len(read_partitions("instances_modeling", [day], settings)) == len(kept)


def test_a_catalog_locked_by_another_process_is_one_line(published, monkeypatch):
    import sqlite3

    from churn.core import warehouse

    settings, frame = published
    monkeypatch.setattr(warehouse, "COMMIT_ATTEMPTS", 2)
    holder = sqlite3.connect(Path(settings.warehouse) / "_catalog" / "iceberg.db")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(CatalogStateError, match="stayed locked by another process.*retry when it has ended"):
            write_partition("instances_modeling", RUN_DATE, frame.head(3).drop(columns="true_p"),
                            settings)
    finally:
        holder.rollback()
        holder.close()
