"""Every task log ends with one line: the days, the rows, what happened, the seconds."""

from __future__ import annotations

import logging

import airflow.sdk.exceptions  # noqa: F401 - Airflow configures logging first, as in a task process

from churn.dag_support import tasks
from churn.jobs.summaries import ScoreSummary


def test_every_task_ends_with_one_summary_line(caplog):
    summary = ScoreSummary("2026-03-02-abc", [{"dt": "2026-03-01", "rows": 120}, {"dt": "2026-03-02", "rows": 80}])
    with caplog.at_level(logging.INFO, logger="churn.task"):
        out = tasks.run(lambda: summary)
    assert out["days"] == ["2026-03-01", "2026-03-02"]
    (line,) = [r.getMessage() for r in caplog.records if r.name == "churn.task"]
    assert line.startswith("done in ") and line.endswith(
        ": 2026-03-01..2026-03-02 (2 days), 200 rows, model 2026-03-02-abc")
