"""Airflow plumbing shared by the DAG files: assets of tables and the skip / fail rules. Airflow is
imported inside the functions (only DAG files call them)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from churn.core.tables import Table
from churn.jobs.summaries import Skipped, Summary

log = logging.getLogger("churn.task")
alert_log = logging.getLogger("churn.alerts")


def asset(table: Table):
    """The Airflow asset of a table (its URI is a name, not a location: one DAG file for every deployment)."""
    from airflow.sdk import Asset

    return Asset(uri=table.asset_uri, name=table.name)


def run(job: Callable[[], Summary]) -> dict:
    """Run a job in a task: ``Skipped`` → the task is skipped; no champion → fails at once, without retries."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    started = time.perf_counter()
    try:
        result = job()
    except Skipped as exc:
        raise AirflowSkipException(str(exc)) from None
    except Exception as exc:
        from churn.models.registry import NoChampion

        if isinstance(exc, NoChampion):  # retrying cannot create a champion
            raise AirflowFailException(f"{exc} — then clear this task") from None
        raise
    # every task log ends with one line: days, rows, seconds
    log.info("done in %.1f s: %s", time.perf_counter() - started, result.headline())
    return result.as_dict()


def fail_on_alerts(summary: dict) -> None:
    """Fail the task (no retry: a rerun finds the same data) when a monitoring summary holds alerts.

    Called after the monitoring tables are published, so the run is red in the UI while nothing
    published is held back; the message lists every alert, one per line.
    """
    from airflow.sdk.exceptions import AirflowFailException

    alerts = list((summary or {}).get("alerts") or [])
    for alert in alerts:  # the alerts first, each a line of its own, before Airflow's account of the failure
        log.error("ALERT: %s", alert)
    if alerts:
        from churn.dag_support.notifiers import notify_configured

        # the callback already had them from the monitoring job (the CLI's path too); the Notifiers get them here
        notify_configured({"monitoring_alerts": alerts, "summary": summary}, with_callback=False)
        lines = "\n".join(f"  - {a}" for a in alerts)
        report = (summary or {}).get("report")
        raise AirflowFailException(f"{len(alerts)} monitoring alert(s) (already sent to the alert callback):\n{lines}"
                                   + (f"\ndashboard: {report}" if report else ""))
    log.info("no monitoring alert")


def alert_on_failure(context: Mapping) -> None:
    """Airflow task-failure callback: one line an operator can act on, then ``alert_callback(context)``."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    summary = {
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(dag_run, "run_id", None) or getattr(ti, "run_id", None),
        "try_number": getattr(ti, "try_number", None),
        "exception": repr(context.get("exception"))[:500],
        "log_url": getattr(ti, "log_url", None),
    }
    alert_log.error("churn task failed: %s", summary)
    from churn.dag_support.notifiers import notify_configured

    notify_configured(context)  # the Notifiers of CHURN_ALERT_NOTIFIERS and the CHURN_ALERT_CALLBACK function
