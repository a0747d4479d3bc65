"""Daily monitoring: realised performance once outcomes arrive, and drift of each scored day.

Two independent functions of a day D (and the warehouse):

* :func:`publish_performance` — ``instances_modeling`` dt=D holds the outcomes that became known on
  D (cohort ``eval_start_date = D - label_window_days``). Those instances were scored when their first
  week ended, in ``instances_w1_scored`` dt = D - label_window_days + first_week_days. Joining the two
  gives each model version's real, out-of-time AUC, log-loss, Brier and precision / recall at the
  stored decision. It runs when the outcomes are published, whether or not scoring of D succeeded.
* :func:`publish_drift` — the features of ``instances_w1`` dt=D against the reference profile stored
  with the model version that scored D (its training cohorts of the same weekday), as a PSI per
  feature, plus the PSI of the score (risk bands are training deciles: 10% each). It runs when the
  predictions of D exist.

Each reads one or two partitions and a few KB of model metadata. Thresholds raise alerts: PSI above
``monitoring_psi_alert``, realised AUC under the promotion floor or more than
``monitoring_auc_drop_alert`` below the model's validation AUC.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from churn.core.settings import Settings
from churn.core.tables import (
    DRIFT_SCHEMA,
    FEATURE_DRIFT,
    INSTANCES_MODELING,
    INSTANCES_W1,
    MODEL_PERFORMANCE,
    PERFORMANCE_SCHEMA,
    PREDICTIONS,
)
from churn.core.warehouse import PartitionNotFound, PublishedPartition, read_partition, write_partition
from churn.models import evaluate
from churn.models.profile import DRIFT_EXEMPT, drift_test, homogeneity_p_value, psi_from_shares, reference_group

log = logging.getLogger("churn.monitor")

SCORE_FEATURE = "p_retained"  # the row of feature_drift that describes the score itself
MIN_ROWS_FOR_AUC = 30


class NothingToMonitor(PartitionNotFound):
    """The partition a monitoring step needs is not published (yet)."""


# ---------------------------------------------------------------------------------- performance
def performance_alert(auc: float, validation_auc: float | None, settings: Settings,
                      n_pos: int | None = None, n_neg: int | None = None) -> str:
    """Why a realised AUC is alarming ('' when it is not): under the floor, or far below validation.

    With the day's outcome counts, the rule accounts for sample size: it alerts only when even the upper end
    of the AUC's 95% interval is below the bar (a day of 150 outcomes has an interval of about ±0.08, so a
    point estimate alone raised an alarm on several stationary days in a month). Without counts: the point.
    """
    if auc is None or np.isnan(auc):
        return ""
    high, shown = auc, f"realised AUC {auc:.3f}"
    if n_pos is not None and n_neg is not None:
        low, high = evaluate.auc_interval(auc, n_pos, n_neg)
        shown = f"realised AUC {auc:.3f} (95% interval {low:.3f}–{high:.3f}, {n_pos + n_neg} outcomes)"
    problems = []
    if high < settings.promotion_auc_floor:
        problems.append(f"{shown} is below the floor {settings.promotion_auc_floor}")
    if validation_auc is not None and high < validation_auc - settings.monitoring_auc_drop_alert:
        problems.append(f"{shown} is more than {settings.monitoring_auc_drop_alert} below "
                        f"the validation AUC {validation_auc:.3f}")
    return "; ".join(problems)


def realised_performance(ds: date, settings: Settings, metadata_of: Callable[[str], dict]) -> pd.DataFrame:
    """One row per model version: how its predictions for the cohort whose outcome became known on ``ds`` did."""
    cohort_start = ds - timedelta(days=settings.label_window_days)
    scored_dt = cohort_start + timedelta(days=settings.first_week_days)
    try:
        outcomes = read_partition(INSTANCES_MODELING, ds, settings)
    except PartitionNotFound:
        raise NothingToMonitor(f"performance of {ds}: no outcomes (instances_modeling dt={ds} is not published)") from None
    try:
        scored = read_partition(PREDICTIONS, scored_dt, settings)
    except PartitionNotFound:
        log.info("monitoring %s: the cohort of %s was never scored (no predictions dt=%s)", ds, cohort_start, scored_dt)
        scored = pd.DataFrame(columns=["instance_id", "p_retained", "prediction_retained", "model_version"])
    joined = outcomes[["instance_id", "retained"]].merge(
        scored[["instance_id", "p_retained", "prediction_retained", "model_version"]], on="instance_id", how="inner"
    )
    rows = []
    for version, part in (joined.groupby("model_version", sort=True) if len(joined) else [(None, joined)]):
        y = part["retained"].to_numpy().astype(int)
        p = part["p_retained"].to_numpy().astype(float)
        metrics = evaluate.probability_metrics(y, p) if len(part) else {}
        decided = part["prediction_retained"].to_numpy().astype(int)  # 0/1: any threshold in (0, 1] keeps them
        at_threshold = evaluate.threshold_metrics(y, decided, 0.5) if len(part) else {}
        at_threshold = {k: at_threshold.get(k, float("nan")) for k in ("precision", "recall", "f2")}
        validation_auc = (metadata_of(version).get("metrics") or {}).get("roc_auc") if version else None
        auc = metrics.get("roc_auc", float("nan")) if len(part) >= MIN_ROWS_FOR_AUC else float("nan")
        n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
        auc_low, auc_high = evaluate.auc_interval(auc, n_pos, n_neg)
        errors = evaluate.per_row_standard_errors(y, p)
        rows.append({
            "model_version": version,
            "cohort_eval_start_date": cohort_start,
            "scored_dt": scored_dt,
            "labelled_rows": len(outcomes),
            "scored_rows": len(part),
            "label_rate": float(outcomes["retained"].mean()) if len(outcomes) else float("nan"),
            "mean_p_retained": float(p.mean()) if len(part) else float("nan"),
            "roc_auc": auc,
            "log_loss": metrics.get("log_loss", float("nan")),
            "brier": metrics.get("brier", float("nan")),
            **at_threshold,
            "validation_roc_auc": float(validation_auc) if validation_auc is not None else float("nan"),
            "alert": performance_alert(auc, validation_auc, settings, n_pos, n_neg) or None,
            "roc_auc_low": auc_low,
            "roc_auc_high": auc_high,
            "observed_rate": float(y.mean()) if len(part) else float("nan"),
            "log_loss_se": errors["log_loss_se"],
            "brier_se": errors["brier_se"],
        })
    return pd.DataFrame(rows)


def publish_performance(ds: date, settings: Settings, metadata_of: Callable[[str], dict]) -> tuple[PublishedPartition, dict, list[str]]:
    """Publish model_performance dt=``ds``; returns the partition, headline numbers and alerts."""
    performance = realised_performance(ds, settings, metadata_of)
    table = pa.Table.from_pandas(performance, schema=PERFORMANCE_SCHEMA, preserve_index=False)
    published = write_partition(MODEL_PERFORMANCE, ds, table, settings)
    scored = performance[performance["scored_rows"] > 0]
    headline = {"scored_rows": int(performance["scored_rows"].sum()), "roc_auc": _weighted(scored, "roc_auc"),
                "log_loss": _weighted(scored, "log_loss")}
    return published, headline, [f"performance: {a}" for a in performance["alert"].dropna()]


# ---------------------------------------------------------------------------------------- drift
def feature_drift(ds: date, settings: Settings, profile_of: Callable[[str], tuple[dict, dict]]) -> pd.DataFrame:
    """PSI of every feature of instances_w1 dt=``ds`` against the profile of the model version that scored it."""
    try:
        scored = read_partition(PREDICTIONS, ds, settings)
    except PartitionNotFound:
        raise NothingToMonitor(f"drift of {ds}: no predictions (instances_w1_scored dt={ds} is not published)") from None
    current = read_partition(INSTANCES_W1, ds, settings)
    versions = scored["model_version"].dropna().unique().tolist()
    version = max(versions) if versions else None  # one version scores a day; a rescored day keeps the newest
    if version is None:
        raise NothingToMonitor(f"drift of {ds}: the predictions of dt={ds} name no model version")
    profile, metadata = profile_of(version)
    return drift_rows(current, scored, version, profile, metadata, settings)


def drift_rows(current: pd.DataFrame, scored: pd.DataFrame, version: str, profile: dict, metadata: dict,
               settings: Settings) -> pd.DataFrame:
    """The feature_drift rows of one day's features ``current`` and predictions ``scored`` (pure: reads nothing)."""
    features = [f["name"] for f in metadata.get("features", []) if f["name"] not in DRIFT_EXEMPT]
    rows = []
    for name in features:
        group = reference_group(profile, name, current)
        if group is None or name not in current.columns:
            where = "today's features" if name not in current.columns else "the model's reference profile"
            rows.append(_row(name, version, len(current), 0, float("nan"), None, None, f"feature {name!r} is missing "
                             f"from {where}"))
            continue
        values = current[name].to_numpy(dtype=np.float64, na_value=np.nan)
        value, p_value = drift_test(group, values)
        finite = values[~np.isnan(values)]
        rows.append(_row(name, version, len(current), group["rows"], value,
                         (float(finite.mean()) if len(finite) else float("nan"), float(np.isnan(values).mean())),
                         (group["mean"], group["null_rate"]), psi_alert(value, settings, p_value), p_value))
    bands = scored["risk_band"].to_numpy()
    actual = np.bincount(np.clip(bands, 1, 10) - 1, minlength=10) / max(len(bands), 1)
    reference_rows = int(profile.get("rows", 0))
    value = psi_from_shares(np.full(10, 0.1), actual) if len(bands) else float("nan")
    p_value = homogeneity_p_value(np.full(10, 0.1), reference_rows, actual, len(bands)) if len(bands) else float("nan")
    p = scored["p_retained"].to_numpy(dtype=float)
    rows.append(_row(SCORE_FEATURE, version, len(scored), reference_rows, value,
                     (float(p.mean()) if len(p) else float("nan"), 0.0), (float("nan"), 0.0),
                     psi_alert(value, settings, p_value), p_value))
    return pd.DataFrame(rows)


def publish_drift(ds: date, settings: Settings, profile_of: Callable[[str], tuple[dict, dict]]) -> tuple[PublishedPartition, dict, list[str]]:
    """Publish feature_drift dt=``ds``; returns the partition, headline numbers and alerts."""
    drift = feature_drift(ds, settings, profile_of)
    table = pa.Table.from_pandas(drift, schema=DRIFT_SCHEMA, preserve_index=False)
    published = write_partition(FEATURE_DRIFT, ds, table, settings)
    worst = drift.sort_values("psi", ascending=False, na_position="last").iloc[0]
    headline = {"features": len(drift), "max_psi": float(worst["psi"]), "max_psi_feature": str(worst["feature"]),
                "model_version": str(worst["model_version"])}
    alerts = [f"drift {f}: {a}" for f, a in zip(drift["feature"], drift["alert"], strict=True) if a]
    return published, headline, alerts


def psi_alert(value: float, settings: Settings, p_value: float | None = None) -> str | None:
    """A drift alert when the PSI is large **and** (given a p-value) a shift that large is not chance at the
    day's sample size: ``p_value < CHURN_MONITORING_DRIFT_P_VALUE``."""
    if value is None or np.isnan(value) or value <= settings.monitoring_psi_alert:
        return None
    if p_value is None or np.isnan(p_value):
        return f"PSI {value:.3f} > {settings.monitoring_psi_alert}"
    if p_value >= settings.monitoring_drift_p_value:
        return None
    return f"PSI {value:.3f} > {settings.monitoring_psi_alert} (p = {p_value:.1e}, chi-square vs the training rows)"


def _row(name, version, current_rows, reference_rows, value, current_stats, reference_stats, alert,
         p_value=float("nan")) -> dict:
    mean, null_rate = current_stats or (float("nan"), float("nan"))
    ref_mean, ref_null = reference_stats or (float("nan"), float("nan"))
    return {"feature": name, "model_version": version, "current_rows": current_rows, "reference_rows": reference_rows,
            "psi": value, "mean": mean, "reference_mean": float("nan") if ref_mean is None else ref_mean,
            "null_rate": null_rate, "reference_null_rate": float("nan") if ref_null is None else ref_null,
            "alert": alert or None, "psi_p_value": p_value}


def _weighted(frame: pd.DataFrame, column: str) -> float | None:
    values = frame[[column, "scored_rows"]].dropna()
    if values.empty:
        return None
    return round(float(np.average(values[column], weights=values["scored_rows"])), 6)
