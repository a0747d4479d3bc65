"""Job: add the partitions of days to the Glue catalog (deployment=aws); tables are created at deploy time."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from churn.core.glue import add_partitions, glue_client
from churn.core.settings import Settings
from churn.jobs.summaries import RegisterSummary, Skipped


def register_partitions(settings: Settings, tables: Iterable[str], days: Iterable[date]) -> RegisterSummary:
    tables, days = list(tables), sorted(set(days))
    if settings.deployment != "aws":
        raise Skipped("deployment=local: no Glue catalog (churn query reads the warehouse)")
    if not days:
        raise Skipped("no day to register")
    added = existed = 0
    client = glue_client(settings)  # one client for every table: creating one costs ~0.1-0.8 s
    for name in tables:
        counts = add_partitions(settings, name, days, client)
        added, existed = added + counts["added"], existed + counts["existed"]
    return RegisterSummary(tables=tables, days=days, added=added, existed=existed)
