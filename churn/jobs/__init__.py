"""The job layer: each daily job is one function of settings and a day or days, returning a typed summary.

The CLI (``churn features|train|score|monitor|outreach|maintain``) and the DAG tasks call these same
functions, so both follow the same skip rules (:class:`Skipped`), raise the same alerts and report the
same summaries. Heavy libraries are imported inside the functions: importing this package is cheap.
"""

from churn.jobs.features import build_features
from churn.jobs.maintenance import maintain_tables
from churn.jobs.monitor import monitor, monitoring_report
from churn.jobs.outreach import assign_outreach, learn_outreach
from churn.jobs.retrain import retrain, training_data_ready
from churn.jobs.score import score
from churn.jobs.summaries import (
    FeaturesSummary,
    MaintenanceSummary,
    MonitorSummary,
    OutreachAssignSummary,
    OutreachLearnSummary,
    RetrainSummary,
    ScoreSummary,
    Skipped,
)

__all__ = [
    "FeaturesSummary",
    "MonitorSummary",
    "MaintenanceSummary",
    "OutreachAssignSummary",
    "OutreachLearnSummary",
    "RetrainSummary",
    "ScoreSummary",
    "Skipped",
    "assign_outreach",
    "build_features",
    "learn_outreach",
    "maintain_tables",
    "monitor",
    "monitoring_report",
    "retrain",
    "score",
    "training_data_ready",
]
