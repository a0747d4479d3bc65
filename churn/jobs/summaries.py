"""What each job returns: small typed records (paths, counts, metrics, alerts), never data.

``as_dict()`` gives the JSON-safe form that XCom stores and the CLI prints, so a DAG run and a CLI
run of the same days can be compared field by field.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime


def json_safe(value, depth: int = 0):
    """JSON-friendly copy with only scalars, lists and dicts: dates → ISO, numpy → Python, floats rounded."""
    if depth > 8:
        return None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if value != value else round(value, 6)  # NaN → null
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return json_safe(value.item(), depth + 1)  # numpy scalar
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_safe(dataclasses.asdict(value), depth + 1)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_safe(v, depth + 1) for v in (sorted(value) if isinstance(value, set) else value)]
    if hasattr(value, "__fspath__"):
        return os.fspath(value)
    return None  # DataFrames, arrays, models: never XCom


class Summary:
    def headline(self) -> str:
        """One line a task log ends with: which days, how many rows, what happened."""
        from churn.core.dates import describe_days

        parts = [describe_days(self.days)] if hasattr(type(self), "days") else []
        rows = self.row_count()
        if rows is not None:
            parts.append(f"{rows:,} rows")
        return ", ".join(parts + self.extra())

    def row_count(self) -> int | None:
        return None

    def extra(self) -> list[str]:
        return []

    def as_dict(self) -> dict:
        """JSON-safe fields, plus ``days`` (ISO dates) when the summary covers days: what downstream tasks read."""
        out = json_safe(self)
        if hasattr(type(self), "days"):
            out["days"] = [d.isoformat() for d in self.days]
        return out


@dataclass(frozen=True)
class FeaturesSummary(Summary):
    start: date
    end: date
    engine: str
    seconds: float
    tables: dict[str, dict]  # name -> {path, partitions, rows, rows_by_dt (<= 31 days)}
    quality: dict[str, int]
    chunks: list[dict] = field(default_factory=list)  # {start, end, status: built | kept}

    @property
    def days(self) -> list[date]:
        from churn.core.dates import days

        return days(self.start, self.end)

    def row_count(self) -> int:
        return sum(int(t.get("rows") or 0) for t in self.tables.values())

    def extra(self) -> list[str]:
        kept = sum(c.get("status") == "kept" for c in self.chunks)
        return [f"engine {self.engine}"] + ([f"{len(self.chunks)} chunks ({kept} kept from an earlier run)"]
                                            if len(self.chunks) > 1 else [])


@dataclass(frozen=True)
class RetrainSummary(Summary):
    run_date: date
    version: str
    promoted: bool
    reason: str
    champion_version: str | None
    model: str
    metrics: dict
    rows: dict
    report: str
    reused: bool
    held: bool = False  # labels looked wrong: a challenger only a person can promote (an alert was raised)
    seconds: float | None = None

    def row_count(self) -> int:
        return int(self.rows.get("total", 0))

    def extra(self) -> list[str]:
        return [f"version {self.version} {'promoted' if self.promoted else 'not promoted'}: {self.reason}",
                f"report {self.report}"]


@dataclass(frozen=True)
class ScoreSummary(Summary):
    model_version: str
    scored: list[dict]  # per day: dt, path, rows

    @property
    def days(self) -> list[date]:
        return [date.fromisoformat(s["dt"]) for s in self.scored]

    @property
    def rows(self) -> int:
        return sum(int(s["rows"]) for s in self.scored)

    def row_count(self) -> int:
        return self.rows

    def extra(self) -> list[str]:
        return [f"model {self.model_version}"]


@dataclass(frozen=True)
class MonitorSummary(Summary):
    performance: list[dict] = field(default_factory=list)  # per day: dt, path, scored_rows, roc_auc, log_loss
    drift: list[dict] = field(default_factory=list)  # per day: dt, path, features, max_psi, max_psi_feature
    skipped: list[str] = field(default_factory=list)  # why a day's step did not run
    alerts: list[str] = field(default_factory=list)
    report: str | None = None  # the monitoring dashboard this run rewrote

    @property
    def days(self) -> list[date]:
        return sorted({date.fromisoformat(d["dt"]) for d in self.performance + self.drift})

    def extra(self) -> list[str]:
        return [f"{len(self.performance)} performance and {len(self.drift)} drift days",
                f"{len(self.skipped)} steps skipped", f"{len(self.alerts)} alerts"] + (
            [f"dashboard {self.report}"] if self.report else [])


@dataclass(frozen=True)
class MaintenanceSummary(Summary):
    retention_days: int
    tables: list[dict]  # per table: expired_snapshots, deleted_files, orphans_deleted
    staging_removed: list[str]

    def extra(self) -> list[str]:
        expired = sum(int(t.get("expired_snapshots") or 0) for t in self.tables)
        orphans = sum(int(t.get("orphans_deleted") or 0) for t in self.tables)
        return [f"{expired} snapshots expired", f"{orphans} orphaned data files removed",
                f"{len(self.staging_removed)} staging folders removed"]


@dataclass(frozen=True)
class OutreachAssignSummary(Summary):
    assigned: list[dict]  # per day: dt, policy_version, trials, contacted, holdout, overflow, by_channel, expected_gain

    @property
    def days(self) -> list[date]:
        return [date.fromisoformat(a["dt"]) for a in self.assigned]

    @property
    def contacted(self) -> int:
        return sum(int(a["contacted"]) for a in self.assigned)

    @property
    def holdout(self) -> int:
        return sum(int(a["holdout"]) for a in self.assigned)

    def row_count(self) -> int:
        return sum(int(a["trials"]) for a in self.assigned)

    def extra(self) -> list[str]:
        return [f"{self.contacted} to contact", f"{self.holdout} held out"]

    def as_dict(self) -> dict:
        return super().as_dict() | {"contacted": self.contacted, "holdout": self.holdout}


@dataclass(frozen=True)
class OutreachLearnSummary(Summary):
    results: list[dict]  # per outcome day: dt, assigned_dt, learned, status, policy_version, effect

    @property
    def days(self) -> list[date]:
        return [date.fromisoformat(r["dt"]) for r in self.results]

    @property
    def learned(self) -> int:
        return sum(int(r["learned"]) for r in self.results)

    def extra(self) -> list[str]:
        return [f"{self.learned} outcomes learned"]

    def as_dict(self) -> dict:
        return super().as_dict() | {"learned": self.learned}


class Skipped(Exception):
    """A job found nothing to do under its rules (a DAG task turns this into 'skipped', the CLI into a note)."""
