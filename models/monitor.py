"""Daily monitoring: realised performance once outcomes arrive, and drift of the scoring population.

For a day D (a pure function of D and the warehouse):

* **Realised performance.** ``instances_modeling`` dt=D holds the outcomes that became known on D
  (cohort ``eval_start_date = D - label_window_days``). Those instances were scored when their first
  week ended, in ``instances_w1_scored`` dt = D - label_window_days + first_week_days. Joining the
  two gives the model's real, out-of-time log-loss, AUC, Brier and precision / recall at the stored
  decision — one row per model version that scored them (the Khan Academy dashboard: average log
  likelihood and number of samples per day).
* **Drift.** The features of ``instances_w1`` dt=D (today's scoring population) against the
  champion's training window (its cohorts that started on the same weekday), as a population
  stability index (PSI) per feature over the training deciles, and the distribution of today's risk bands (training deciles by construction, so 10%
  each) as the PSI of the score.

Both are published as partitions ``monitoring/model_performance/dt=D`` and
``monitoring/feature_drift/dt=D`` (Athena tables of the same names). Thresholds raise alerts:
PSI > ``monitoring_psi_alert``, realised AUC under the promotion floor, or more than
``monitoring_auc_drop_alert`` below the model's validation AUC.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import typer

from churn.settings import Settings, get_settings
from churn.warehouse import PartitionNotFound, read_partition, read_partitions, write_partition
from models import evaluate
from models.registry import Registry
from models.transform import feature_columns

log = logging.getLogger("churn.monitor")

PERFORMANCE_TABLE = "model_performance"
DRIFT_TABLE = "feature_drift"
SCORE_FEATURE = "p_retained"  # the row of feature_drift that describes the score itself
MIN_ROWS_FOR_AUC = 30
# Constant within one day's cohort by construction: against a 90-day window its PSI is always huge.
DRIFT_EXEMPT = ("eval_start_weekday",)

PERFORMANCE_SCHEMA = pa.schema([
    pa.field("model_version", pa.string()),
    pa.field("cohort_eval_start_date", pa.date32()),
    pa.field("scored_dt", pa.date32()),
    pa.field("labelled_rows", pa.int64()),
    pa.field("scored_rows", pa.int64()),
    pa.field("label_rate", pa.float64()),
    pa.field("mean_p_retained", pa.float64()),
    pa.field("roc_auc", pa.float64()),
    pa.field("log_loss", pa.float64()),
    pa.field("brier", pa.float64()),
    pa.field("precision", pa.float64()),
    pa.field("recall", pa.float64()),
    pa.field("f2", pa.float64()),
    pa.field("validation_roc_auc", pa.float64()),
    pa.field("alert", pa.string()),
])
DRIFT_SCHEMA = pa.schema([
    pa.field("feature", pa.string()),
    pa.field("model_version", pa.string()),
    pa.field("current_rows", pa.int64()),
    pa.field("reference_rows", pa.int64()),
    pa.field("psi", pa.float64()),
    pa.field("mean", pa.float64()),
    pa.field("reference_mean", pa.float64()),
    pa.field("null_rate", pa.float64()),
    pa.field("reference_null_rate", pa.float64()),
    pa.field("alert", pa.string()),
])


class NothingToMonitor(PartitionNotFound):
    """Neither outcomes nor a scoring population were published for the day."""


# ------------------------------------------------------------------------------------------ PSI
def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10, eps: float = 1e-4) -> float:
    """Population stability index of ``current`` against ``reference`` over the reference's quantile bins.

    Nulls form a bin of their own. Repeated values (counts) give fewer, wider bins, never empty ones.
    Conventional reading: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 major shift.
    """
    reference = np.asarray(reference, dtype=np.float64)
    current = np.asarray(current, dtype=np.float64)
    if len(reference) == 0 or len(current) == 0:
        return float("nan")
    finite = reference[~np.isnan(reference)]
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])) if len(finite) else np.array([])
    return psi_from_shares(_shares(reference, edges), _shares(current, edges), eps)


def psi_from_shares(expected: np.ndarray, actual: np.ndarray, eps: float = 1e-4) -> float:
    expected = np.clip(np.asarray(expected, dtype=np.float64), eps, None)
    actual = np.clip(np.asarray(actual, dtype=np.float64), eps, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of values per bin: (-inf, e0], (e0, e1], …, (e_last, inf), then nulls."""
    missing = np.isnan(values)
    counts = np.bincount(np.searchsorted(edges, values[~missing], side="left"), minlength=len(edges) + 1)
    return np.append(counts, missing.sum()) / len(values)


# ---------------------------------------------------------------------------------- performance
def realised_performance(ds: date, settings: Settings, registry: Registry) -> pd.DataFrame | None:
    """One row per model version: how its predictions for the cohort whose outcome became known on ``ds`` did."""
    cohort_start = ds - timedelta(days=settings.label_window_days)
    scored_dt = cohort_start + timedelta(days=settings.first_week_days)
    try:
        outcomes = read_partition(settings.feature_table_path("instances_modeling"), ds, settings)
    except PartitionNotFound:
        return None
    try:
        scored = read_partition(settings.predictions_table_path(), scored_dt, settings)
    except PartitionNotFound:
        log.info("monitoring %s: the cohort of %s was never scored (no predictions dt=%s)", ds, cohort_start,
                 scored_dt)
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
        metadata = _safe_metadata(registry, version) if version else {}
        validation_auc = (metadata.get("metrics") or {}).get("roc_auc")
        auc = metrics.get("roc_auc", float("nan")) if len(part) >= MIN_ROWS_FOR_AUC else float("nan")
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
            "alert": _performance_alert(auc, validation_auc, settings) or None,
        })
    return pd.DataFrame(rows)


def _performance_alert(auc: float, validation_auc: float | None, settings: Settings) -> str:
    if auc is None or np.isnan(auc):
        return ""
    problems = []
    if auc < settings.promotion_auc_floor:
        problems.append(f"realised AUC {auc:.3f} < floor {settings.promotion_auc_floor}")
    if validation_auc is not None and auc < validation_auc - settings.monitoring_auc_drop_alert:
        problems.append(f"realised AUC {auc:.3f} is more than {settings.monitoring_auc_drop_alert} below "
                        f"the validation AUC {validation_auc:.3f}")
    return "; ".join(problems)


# ---------------------------------------------------------------------------------------- drift
def feature_drift(ds: date, settings: Settings, champion_version: str, metadata: dict) -> pd.DataFrame | None:
    """PSI of every model feature of instances_w1 dt=``ds`` against the champion's training window."""
    try:
        current = read_partition(settings.feature_table_path("instances_w1"), ds, settings)
    except PartitionNotFound:
        return None
    window = metadata.get("training_window") or {}
    start, end = date.fromisoformat(window["start"]), date.fromisoformat(window["end_exclusive"])
    dates = [start + timedelta(days=i) for i in range((end - start).days)]
    reference = read_partitions(settings.feature_table_path("instances_modeling"), dates, settings)
    reference = same_weekdays(reference, current)
    features = [f["name"] for f in metadata.get("features", [])] or feature_columns(current)
    features = [f for f in features if f not in DRIFT_EXEMPT]
    rows = []
    for name in features:
        if name not in current.columns or name not in reference.columns:
            rows.append(_drift_row(name, champion_version, current, reference, float("nan"),
                                   f"feature {name!r} is missing from {'today' if name not in current else 'training'}"))
            continue
        ref = _floats(reference[name])
        cur = _floats(current[name])
        value = psi(ref, cur)
        rows.append(_drift_row(name, champion_version, current, reference, value, _psi_alert(value, settings),
                               ref, cur))
    try:  # the score: today's risk bands should hold 10% each (they are training deciles)
        scored = read_partition(settings.predictions_table_path(), ds, settings)
        bands = scored["risk_band"].to_numpy()
        actual = np.bincount(np.clip(bands, 1, 10) - 1, minlength=10) / max(len(bands), 1)
        value = psi_from_shares(np.full(10, 0.1), actual) if len(bands) else float("nan")
        p = scored["p_retained"].to_numpy(dtype=float)
        rows.append({"feature": SCORE_FEATURE, "model_version": champion_version, "current_rows": len(scored),
                     "reference_rows": int((metadata.get("rows") or {}).get("total", 0)), "psi": value,
                     "mean": float(p.mean()) if len(p) else float("nan"), "reference_mean": float("nan"),
                     "null_rate": 0.0, "reference_null_rate": 0.0, "alert": _psi_alert(value, settings) or None})
    except PartitionNotFound:
        log.info("monitoring %s: instances_w1 dt=%s is not scored yet; score drift skipped", ds, ds)
    return pd.DataFrame(rows)


def same_weekdays(reference: pd.DataFrame, current: pd.DataFrame, min_rows: int = 200) -> pd.DataFrame:
    """The training cohorts that started on the same weekday(s) as today's.

    A day's cohort starts on one weekday, and its first week then holds the weekend at a fixed place:
    against all weekdays, activity-trend features would "drift" every week by construction.
    """
    if "eval_start_weekday" not in reference.columns or "eval_start_weekday" not in current.columns:
        return reference
    alike = reference[reference["eval_start_weekday"].isin(current["eval_start_weekday"].unique())]
    return alike if len(alike) >= min_rows else reference


def _floats(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _drift_row(name, version, current, reference, value, alert, ref=None, cur=None) -> dict:
    def stats(values):
        if values is None or len(values) == 0:
            return float("nan"), float("nan")
        return float(np.nanmean(values)) if (~np.isnan(values)).any() else float("nan"), float(np.isnan(values).mean())

    mean, null_rate = stats(cur)
    ref_mean, ref_null = stats(ref)
    return {"feature": name, "model_version": version, "current_rows": len(current), "reference_rows": len(reference),
            "psi": value, "mean": mean, "reference_mean": ref_mean, "null_rate": null_rate,
            "reference_null_rate": ref_null, "alert": alert or None}


def _psi_alert(value: float, settings: Settings) -> str:
    if value is None or np.isnan(value) or value <= settings.monitoring_psi_alert:
        return ""
    return f"PSI {value:.3f} > {settings.monitoring_psi_alert}"


# ----------------------------------------------------------------------------------------- main
def monitor_day(ds: date, settings: Settings | None = None) -> dict:
    """Publish the monitoring partitions of day ``ds``; returns counts and the alerts (for XCom and logs)."""
    settings = settings or get_settings()
    started = time.perf_counter()
    registry = Registry(settings)
    champion_version, champion_meta = None, {}
    record = registry.alias("champion")
    if record:
        champion_version = record["version"]
        champion_meta = registry.metadata(champion_version, record["metadata_sha256"])
    performance = realised_performance(ds, settings, registry)
    drift = feature_drift(ds, settings, champion_version, champion_meta) if champion_version else None
    if performance is None and drift is None:
        raise NothingToMonitor(f"monitoring {ds}: neither instances_modeling nor instances_w1 has partition dt={ds}"
                               + ("" if champion_version else " (and there is no champion model)"))
    result: dict = {"dt": ds.isoformat(), "alerts": []}
    if performance is not None:
        table = pa.Table.from_pandas(performance, schema=PERFORMANCE_SCHEMA, preserve_index=False)
        published = write_partition(settings.monitoring_table_path(PERFORMANCE_TABLE), ds, table, settings)
        scored = performance[performance["scored_rows"] > 0]
        result["performance"] = {"path": published.path, "scored_rows": int(performance["scored_rows"].sum()),
                                 "roc_auc": _weighted(scored, "roc_auc"), "log_loss": _weighted(scored, "log_loss")}
        result["alerts"] += [f"performance: {a}" for a in performance["alert"].dropna()]
    if drift is not None:
        table = pa.Table.from_pandas(drift, schema=DRIFT_SCHEMA, preserve_index=False)
        published = write_partition(settings.monitoring_table_path(DRIFT_TABLE), ds, table, settings)
        worst = drift.sort_values("psi", ascending=False, na_position="last").iloc[0]
        result["drift"] = {"path": published.path, "features": len(drift), "max_psi": float(worst["psi"]),
                           "max_psi_feature": str(worst["feature"])}
        result["alerts"] += [f"drift {f}: {a}" for f, a in zip(drift["feature"], drift["alert"], strict=True) if a]
    for alert in result["alerts"]:
        log.warning("monitoring %s: %s", ds, alert)
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


def _safe_metadata(registry: Registry, version: str) -> dict:
    try:
        return registry.metadata(version)
    except Exception as exc:  # a damaged old version must not stop monitoring of the others
        log.warning("monitoring: metadata of model version %s unreadable (%s)", version, exc)
        return {}


def _weighted(frame: pd.DataFrame, column: str) -> float | None:
    values = frame[[column, "scored_rows"]].dropna()
    if values.empty:
        return None
    return round(float(np.average(values[column], weights=values["scored_rows"])), 6)


def monitor_command(
    ds: str = typer.Option(None, "--ds", help="YYYY-MM-DD: monitor one day"),
    start: str = typer.Option(None, "--start", help="first day of a range"),
    end: str = typer.Option(None, "--end", help="last day of a range (inclusive)"),
) -> None:
    """Realised performance of past predictions and drift of today's features; writes monitoring tables."""
    if ds and (start or end) or not (ds or (start and end)):
        typer.secho("error: give --ds D, or --start A and --end B", fg="red", err=True)
        raise typer.Exit(2)
    first = date.fromisoformat(ds or start)
    last = date.fromisoformat(ds or end)
    out = []
    for n in range((last - first).days + 1):
        day = first + timedelta(days=n)
        try:
            out.append(monitor_day(day))
        except NothingToMonitor as exc:
            typer.secho(f"skipped: {exc}", fg="yellow", err=True)
    typer.echo(json.dumps(out, indent=1))
