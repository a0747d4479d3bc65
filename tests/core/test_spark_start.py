"""How a local Spark's JVM is started: the class-data archive and the quick compiler for short runs."""

from __future__ import annotations

import os

from churn.core.settings import Settings
from churn.core.spark import ARCHIVE_DUMP_ENV, class_archive_options, class_archive_path, driver_java_options


def test_the_archive_is_used_only_when_it_exists(tmp_path, monkeypatch):
    monkeypatch.delenv(ARCHIVE_DUMP_ENV, raising=False)
    settings = Settings(spark_class_archive_dir=str(tmp_path), _env_file=None)
    path = class_archive_path(settings)
    assert path.startswith(str(tmp_path)) and path.endswith(".jsa")
    assert class_archive_options(settings) == []  # not written yet: the JVM starts as usual
    open(path, "wb").close()
    assert f"-XX:SharedArchiveFile={path}" in class_archive_options(settings)
    assert class_archive_options(Settings(spark_class_archive_dir="", _env_file=None)) == []


def test_the_recording_run_dumps_the_archive(tmp_path, monkeypatch):
    monkeypatch.setenv(ARCHIVE_DUMP_ENV, str(tmp_path / "x.jsa"))
    assert f"-XX:ArchiveClassesAtExit={tmp_path / 'x.jsa'}" in class_archive_options(Settings(_env_file=None))


def test_a_short_run_uses_the_quick_compiler_only(tmp_path):
    settings = Settings(spark_class_archive_dir=str(tmp_path), _env_file=None)
    assert "-XX:TieredStopAtLevel=1" in driver_java_options(settings, short_run=True)
    assert "-XX:TieredStopAtLevel=1" not in driver_java_options(settings, short_run=False)
    assert any(o.startswith("-Dlog4j2.configurationFile=") for o in driver_java_options(settings, False))
    assert os.path.isabs(class_archive_path(settings))


def test_duckdb_takes_the_memory_limit_setting():
    from churn.core.duck import connect

    con = connect(Settings(duckdb_memory_limit="1GB", _env_file=None))
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] in ("1.0 GiB", "953.6 MiB", "1.0 GB")
