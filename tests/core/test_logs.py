"""Quiet, useful logs: repeated warnings become one line with a count, Spark's own lines go to stdout at
WARN (every task's summary line: tests/dags/test_task_logs.py)."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path

from churn.core.dates import describe_days
from churn.core.warehouse import read_partitions
from churn.dev.synthetic import write_w1


def test_days_are_described_as_runs():
    start = date(2026, 1, 1)
    assert describe_days([start + timedelta(days=k) for k in range(10)] + [date(2026, 1, 15)]) == \
        "2026-01-01..2026-01-10, 2026-01-15 (11 days)"
    assert describe_days([start]) == "2026-01-01" and describe_days([]) == "no days"
    many = describe_days([start + timedelta(days=2 * k) for k in range(7)])
    assert many.startswith("2026-01-01, 2026-01-03, 2026-01-05, 2026-01-07, … (3 more runs)")


def test_ninety_missing_partitions_are_one_warning(warehouse, caplog):
    day = date(2026, 3, 1)
    write_w1(warehouse, day, 5, seed=1)
    wanted = [day - timedelta(days=k) for k in range(90)]
    with caplog.at_level(logging.WARNING, logger="churn.core.warehouse"):
        frame = read_partitions("instances_w1", wanted, warehouse)
    assert len(frame) == 5
    lines = [r.getMessage() for r in caplog.records if r.name == "churn.core.warehouse" and r.levelno >= logging.WARNING]
    assert lines == ["instances_w1: 89 of 90 partitions not published, skipped: dt=2025-12-02..2026-02-28 (89 days)"]


def test_spark_logs_warnings_on_stdout_with_our_configuration(spark):
    from churn.core.spark import LOG4J_CONFIG

    options = spark.sparkContext.getConf().get("spark.driver.extraJavaOptions")
    assert f"-Dlog4j2.configurationFile=file:{LOG4J_CONFIG}" in options
    text = Path(LOG4J_CONFIG).read_text()
    assert "rootLogger.level = warn" in text and "appender.console.target = SYSTEM_OUT" in text
