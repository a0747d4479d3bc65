"""Where a failed task and monitoring alerts are sent: Airflow Notifiers (what Airflow users configure: Slack,
SMTP, SNS, apprise …), named in setting ``alert_notifiers``; the ``alert_callback`` function is one of them."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping

from airflow.sdk import BaseNotifier

from churn.core.settings import Settings
from churn.jobs.alerts import call_alert_callback

log = logging.getLogger("churn.alerts")


class CallbackNotifier(BaseNotifier):
    """The ``module:function`` of setting ``alert_callback``, called with the context, as a Notifier."""

    def __init__(self, target: str):
        super().__init__()
        self.target = target

    def notify(self, context) -> None:
        call_alert_callback(self.target, context)


def build(specs: list[dict]) -> list[BaseNotifier]:
    """Instantiate each ``{"class": "module.Class", "kwargs": {...}}``; a wrong one is a one-line ValueError."""
    notifiers = []
    for spec in specs:
        module_name, _, name = spec["class"].rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"CHURN_ALERT_NOTIFIERS: cannot import {spec['class']} ({exc}); is its provider "
                             "installed?") from None
        if not (isinstance(cls, type) and issubclass(cls, BaseNotifier)):
            raise ValueError(f"CHURN_ALERT_NOTIFIERS: {spec['class']} is not an Airflow Notifier (BaseNotifier)")
        notifiers.append(cls(**spec.get("kwargs", {})))
    return notifiers


def configured(settings: Settings, with_callback: bool = True) -> list[BaseNotifier]:
    callback = [CallbackNotifier(settings.alert_callback)] if with_callback and settings.alert_callback else []
    return callback + build(settings.notifier_specs)


def send(notifiers: list[BaseNotifier], context: Mapping) -> int:
    """Call each notifier; one that fails is logged and never fails the run nor stops the others. Returns how many
    succeeded."""
    sent = 0
    for notifier in notifiers:
        try:
            notifier(dict(context))
            sent += 1
        except Exception:  # noqa: BLE001 - an alerting outage must not hide the alert it carries
            log.exception("notifier %s failed", type(notifier).__name__)
    return sent


def notify_configured(context: Mapping, with_callback: bool = True) -> int:
    """Send ``context`` to the configured notifiers (settings read here: a callback has no other way in)."""
    try:
        notifiers = configured(Settings(), with_callback)
    except Exception:  # noqa: BLE001 - broken settings must not break the failure path
        log.exception("alert notifiers unusable: alert logged only")
        return 0
    return send(notifiers, context)
