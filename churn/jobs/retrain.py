"""Job: the weekly retrain of a run date, and the rule for when its training data is complete."""

from __future__ import annotations

from datetime import date, timedelta

from churn.core.settings import Settings
from churn.core.tables import INSTANCES_MODELING
from churn.jobs.summaries import RetrainSummary


def training_data_ready(settings: Settings, day: date) -> bool:
    """A retrain for ``day`` trains on instances_modeling dt in [day - window, day): ready once dt=day-1 is published."""
    from churn.core import storage
    from churn.core.settings import join
    from churn.core.warehouse import MANIFEST, partition_path

    last = day - timedelta(days=1)
    return storage.exists(join(partition_path(INSTANCES_MODELING.location(settings), last), MANIFEST), settings)


def retrain(settings: Settings, run_date: date) -> RetrainSummary:
    """Train, evaluate, register; promote the new version or keep the champion."""
    from models.train import retrain as run

    result = run(run_date, settings)
    fields = RetrainSummary.__dataclass_fields__
    return RetrainSummary(run_date=run_date, **{k: v for k, v in result.items() if k in fields and k != "run_date"})
