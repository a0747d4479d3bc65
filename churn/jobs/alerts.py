"""Where failures and monitoring alerts go: one log line, then the function ``alert_callback`` names."""

from __future__ import annotations

import importlib
import logging

from churn.core.settings import Settings

log = logging.getLogger("churn.alerts")


def _resolve(target: str):
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"alert callback must be 'module:function', got {target!r} (setting CHURN_ALERT_CALLBACK)")
    return getattr(importlib.import_module(module_name), attribute)


def call_alert_callback(target: str | None, payload) -> None:
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
    call_alert_callback(settings.alert_callback, {"monitoring_alerts": list(alerts)})
