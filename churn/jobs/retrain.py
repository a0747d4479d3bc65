"""Job: the weekly retrain of a run date, and the rule for when its training data is complete."""

from __future__ import annotations

from datetime import date, timedelta

from churn.core.settings import Settings
from churn.core.tables import INSTANCES_MODELING
from churn.jobs.summaries import RetrainSummary


def training_data_ready(settings: Settings, day: date) -> bool:
    """A retrain for ``day`` trains on instances_modeling dt in [day - window, day): ready once dt=day-1 is published."""
    from churn.core.warehouse import list_partitions

    return day - timedelta(days=1) in set(list_partitions(INSTANCES_MODELING, settings))


def retrain(settings: Settings, run_date: date) -> RetrainSummary:
    """Train, evaluate, register; promote the new version or keep the champion."""
    from churn.jobs.alerts import notify
    from churn.models.train import retrain as run

    result = run(run_date, settings)
    if result.get("held") and not result.get("reused"):
        notify(settings, [f"retrain {run_date}: model {result['version']} {result['reason']}"])
    fields = RetrainSummary.__dataclass_fields__
    return RetrainSummary(run_date=run_date, **{k: v for k, v in result.items() if k in fields and k != "run_date"})
