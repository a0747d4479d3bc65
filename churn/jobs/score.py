"""Job: score days of instances_w1 with the champion, loaded and verified once per run."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from churn.core.settings import Settings
from churn.jobs.summaries import ScoreSummary, Skipped


def score(settings: Settings, days: Iterable[date]) -> ScoreSummary:
    """Publish predictions for each day; raises ``NoChampion`` (before writing anything) when there is none."""
    from churn.models.registry import Registry
    from churn.models.score import score_partition

    days = sorted(set(days))
    if not days:
        raise Skipped("no day to score")
    model, metadata = Registry(settings).champion()
    scored = [score_partition(model, day, settings, metadata=metadata) for day in days]
    return ScoreSummary(model_version=model.version,
                        scored=[{k: s[k] for k in ("dt", "table", "rows", "features_snapshot_id")} for s in scored])
