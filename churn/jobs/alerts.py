"""Where failures and monitoring alerts go: one log line, then the function ``alert_callback`` names."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping

from churn.core.settings import Settings

log = logging.getLogger("churn.alerts")


def _resolve(target: str):
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"alert callback must be 'module:function', got {target!r} (setting CHURN_ALERT_CALLBACK)")
    return getattr(importlib.import_module(module_name), attribute)


def _call(target: str | None, payload) -> None:
    if not target:
        return
    try:
        _resolve(target)(payload)
    except Exception:  # an alerting outage must never fail the run or hide its own error
        log.exception("alert callback %s failed", target)


def notify(settings: Settings, alerts: list[str]) -> None:
    """Monitoring alerts: logged as one error line, then ``alert_callback({"monitoring_alerts": alerts})``."""
    if not alerts:
        return
    log.error("churn monitoring alerts: %s", alerts)
    _call(settings.alert_callback, {"monitoring_alerts": list(alerts)})


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
    log.error("churn task failed: %s", summary)
    try:
        target = Settings().alert_callback
    except Exception:  # broken settings must not break the failure path
        log.exception("settings unreadable: no alert callback")
        return
    _call(target, context)
