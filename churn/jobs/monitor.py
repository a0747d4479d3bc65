"""Job: realised performance of days whose outcomes arrived, and drift of days that were scored.

The two halves are independent: performance of D needs only the outcomes of D (and whatever was
scored for that cohort, if anything); drift of D needs the predictions of D. Model metadata and
reference profiles are read (and verified) once per run and version, not once per day.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import date, timedelta
from functools import cache

from churn.core.settings import Settings
from churn.jobs.alerts import notify
from churn.jobs.summaries import MonitorSummary, Skipped

log = logging.getLogger("churn.monitor")


class _ModelFacts:
    """Metadata and reference profiles of the model versions a run meets, read once each."""

    def __init__(self, settings: Settings):
        from churn.models.registry import Registry

        self.settings, self.registry = settings, Registry(settings)
        self.metadata = cache(self._metadata)
        self.profile = cache(self._profile)

    def _metadata(self, version: str) -> dict:
        try:
            return self.registry.metadata(version)
        except Exception as exc:  # a damaged old version must not stop monitoring of the others
            log.warning("monitoring: metadata of model version %s unreadable (%s)", version, exc)
            return {}

    def _profile(self, version: str) -> tuple[dict, dict]:
        """The version's metadata (checked against the champion alias when it is the champion) and its profile
        (checked against the sha256 the metadata records); the model files themselves are not needed here."""
        champion = self.registry.alias("champion")
        expected = champion["metadata_sha256"] if champion and champion["version"] == version else None
        metadata = self.registry.metadata(version, expected)
        profile = self.registry.reference_profile(version, metadata)
        if profile is None:
            profile = self._legacy_profile(version, metadata)
        return profile, metadata

    def _legacy_profile(self, version: str, metadata: dict) -> dict:
        """Versions trained before profiles were stored: rebuild it from the training window, once per run."""
        from churn.core.dates import days
        from churn.core.tables import INSTANCES_MODELING
        from churn.core.warehouse import read_partitions
        from churn.models.profile import build_profile

        window = metadata["training_window"]
        dates = days(date.fromisoformat(window["start"]), date.fromisoformat(window["end_exclusive"]) - timedelta(days=1))
        log.warning("model version %s has no stored reference profile: rebuilding it from %d partitions (retrain to "
                    "store one)", version, len(dates))
        frame = read_partitions(INSTANCES_MODELING, dates, self.settings)
        return build_profile(frame, [f["name"] for f in metadata.get("features", [])])


def monitor(settings: Settings, performance_days: Iterable[date] = (), drift_days: Iterable[date] = ()) -> MonitorSummary:
    """Publish model_performance for ``performance_days`` and feature_drift for ``drift_days``; raise the alerts."""
    from churn.models.monitor import NothingToMonitor, publish_drift, publish_performance

    performance_days, drift_days = sorted(set(performance_days)), sorted(set(drift_days))
    if not performance_days and not drift_days:
        raise Skipped("no day to monitor")
    facts = _ModelFacts(settings)
    summary = MonitorSummary()
    for day, step, publish, of in [*((d, "performance", publish_performance, facts.metadata) for d in performance_days),
                                   *((d, "drift", publish_drift, facts.profile) for d in drift_days)]:
        try:
            published, headline, alerts = publish(day, settings, of)
        except NothingToMonitor as exc:
            summary.skipped.append(str(exc))
            continue
        getattr(summary, step).append({"dt": day.isoformat(), "table": published.table, **headline})
        summary.alerts.extend(f"{day}: {a}" for a in alerts)
    from churn.models.score import stale_predictions

    for stale in stale_predictions(drift_days, settings):
        summary.alerts.append(f"{stale['dt']}: predictions are stale: they scored instances_w1 snapshot "
                              f"{stale['scored_snapshot']}, the features were rebuilt since (snapshot "
                              f"{stale['features_snapshot']}); rescore with `churn score --ds {stale['dt']}`")
    if summary.skipped:
        log.info("monitoring: %d step(s) skipped, first: %s", len(summary.skipped), summary.skipped[0])
    if not summary.performance and not summary.drift:
        raise Skipped("; ".join(summary.skipped))
    notify(settings, summary.alerts)
    try:  # the tables are published: a dashboard that cannot be drawn is a warning, not a failed run
        summary = replace(summary, report=monitoring_report(settings)["report"])
    except Exception as exc:
        log.warning("monitoring dashboard not written: %s (draw it with `churn monitor report`)", exc)
    return summary


DASHBOARD_PATH = "reports/monitoring_dashboard.html"  # under the warehouse root; rewritten by every monitoring run


def dashboard_path(settings: Settings) -> str:
    """Where the monitoring dashboard of this warehouse is (a file or an s3:// path)."""
    return f"{settings.warehouse.rstrip('/')}/{DASHBOARD_PATH}"


def monitoring_report(settings: Settings, end: date | None = None, window_days: int = 90,
                      out: str | None = None) -> dict:
    """Write the monitoring dashboard (``churn.models.dashboard``) of the ``window_days`` days up to ``end`` (default:
    the last monitored day) to the warehouse at ``reports/monitoring_dashboard.html``, and to ``out`` if given."""
    from datetime import UTC, datetime

    import pandas as pd

    from churn.core import storage
    from churn.core.dates import days
    from churn.core.outputs import require_output_path
    from churn.core.tables import FEATURE_DRIFT, MODEL_PERFORMANCE
    from churn.core.warehouse import list_partitions, read_partitions
    from churn.models.dashboard import build_dashboard

    storage.require_warehouse(settings)
    if out:
        require_output_path(out, settings)
    available = {t: list_partitions(t, settings) for t in (MODEL_PERFORMANCE, FEATURE_DRIFT)}
    last = end or max([d for found in available.values() for d in found], default=None)
    if last is None:
        raise Skipped("nothing monitored yet: run `churn monitor` (or the churn_monitoring DAG) first")
    wanted = set(days(last - timedelta(days=window_days - 1), last))
    frames = {}
    for t, found in available.items():
        shown = sorted(wanted & set(found))
        frames[t.name] = read_partitions(t, shown, settings) if shown else pd.DataFrame(
            columns=[*(name for name, _ in t.columns(settings)), "dt"])
    page = build_dashboard(
        frames[MODEL_PERFORMANCE.name], frames[FEATURE_DRIFT.name],
        title=f"Churn monitoring — {settings.warehouse}", psi_alert=settings.monitoring_psi_alert,
        auc_floor=settings.promotion_auc_floor, generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    ).encode()
    target = dashboard_path(settings)
    storage.write_bytes(target, page, settings)
    written = [target]
    if out:
        storage.write_bytes(out, page, settings)
        written.append(out)
    log.info("monitoring dashboard: %s", " and ".join(written))
    return {"report": target, "written": written, "end": last.isoformat(), "window_days": window_days,
            "performance_rows": len(frames[MODEL_PERFORMANCE.name]), "drift_rows": len(frames[FEATURE_DRIFT.name]),
            "alerts": sum(int(frame["alert"].notna().sum()) for frame in frames.values()), "bytes": len(page)}
