"""Weekly retrain: last ``training_window_days`` of instances_modeling -> candidates -> registry -> promotion.

Out of time throughout: the most recent ``validation_days`` cohorts (by eval_start_date) validate,
the older ones train (and are split into time-ordered folds for tuning). The winner (lowest
validation log-loss, AUC breaks ties) is refitted on the whole window, Platt-calibrated only if
that improves out-of-fold validation log-loss, and its threshold is chosen on validation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd
from scipy.special import expit

from churn.core.feature_config import load_feature_config
from churn.core.settings import Settings
from churn.core.tables import INSTANCES_MODELING
from churn.core.warehouse import read_snapshot
from churn.models import artifacts, evaluate, promotion, report
from churn.models.candidates import candidate_list, feature_directions, fit_candidate, score_summary
from churn.models.model import ChurnModel
from churn.models.profile import PROFILE_FILE, build_profile
from churn.models.registry import Registry, version_id
from churn.models.transform import feature_columns

log = logging.getLogger("churn.train")

MIN_ROWS = 1000
MIN_CLASS_ROWS = 50
MIN_VALIDATION_ROWS = 200
MIN_VALIDATION_CLASS_ROWS = 20
TIE = 1e-4  # validation log-loss differences below this are ties (AUC decides)


class TrainingDataError(ValueError):
    """The training window has too little (or unusable) data; the message says what is missing."""


# ---------------------------------------------------------------------------------------------- data
def training_dates(run_date: date, settings: Settings) -> list[date]:
    """dt partitions of instances_modeling in [run_date - training_window_days, run_date)."""
    return [run_date - timedelta(days=d) for d in range(settings.training_window_days, 0, -1)]


def load_window(run_date: date, settings: Settings) -> tuple[pd.DataFrame, dict]:
    dates = training_dates(run_date, settings)
    try:
        frame, snapshot_id = read_snapshot(INSTANCES_MODELING, dates, settings)
    except FileNotFoundError as exc:
        raise TrainingDataError(f"no training data for run date {run_date}: {exc}") from exc
    if "retained" not in frame.columns:
        raise TrainingDataError("instances_modeling has no 'retained' label column")
    found = sorted(frame["dt"].unique().tolist())
    frame = frame.assign(eval_start_date=pd.to_datetime(frame["eval_start_date"]).dt.normalize())
    frame = frame.sort_values(["eval_start_date", "instance_id"], kind="stable").reset_index(drop=True)
    frame["retained"] = frame["retained"].astype(np.int32)
    window = {"start": dates[0].isoformat(), "end_exclusive": run_date.isoformat(),
              "partitions_expected": len(dates), "partitions_found": len(found),
              "partitions_missing": len(dates) - len(found)}
    return frame, window | {"snapshot_id": snapshot_id}


def check_rows(frame: pd.DataFrame, minimum: int, per_class: int, what: str) -> None:
    positives = int(frame["retained"].sum())
    negatives = len(frame) - positives
    if len(frame) < minimum or positives < per_class or negatives < per_class:
        raise TrainingDataError(
            f"{what}: {len(frame)} rows ({positives} retained, {negatives} churned); need at least {minimum} rows "
            f"and {per_class} of each class — are the instances_modeling partitions published?"
        )


def split_out_of_time(frame: pd.DataFrame, validation_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    last = frame["eval_start_date"].max()
    cut = last - pd.Timedelta(days=validation_days - 1)
    valid = frame["eval_start_date"] >= cut
    return frame[~valid].reset_index(drop=True), frame[valid].reset_index(drop=True)


def data_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of the training rows (sorted) and their schema."""
    digest = hashlib.sha256()
    digest.update(json.dumps([(c, str(t)) for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------ retrain
def retrain(run_date: date, settings: Settings) -> dict:
    """Train, evaluate, register and (maybe) promote the model for ``run_date``; JSON-serialisable result."""
    started = time.perf_counter()
    frame, window = load_window(run_date, settings)
    snapshot_id = window.pop("snapshot_id")  # not part of the training key: a rebuild with equal rows reuses the version
    check_rows(frame, MIN_ROWS, MIN_CLASS_ROWS, f"training window {window['start']}..{run_date}")
    features = feature_columns(frame)
    fingerprint = data_fingerprint(frame)
    feature_config = load_feature_config(settings)
    directions = feature_directions(features, feature_config)
    config = {"seed": settings.seed, "validation_days": settings.validation_days,
              "threshold_objective": settings.threshold_objective, "window": window, "code": artifacts.code_version(),
              "directions": directions}  # a changed direction is another model, not a reused version
    key = hashlib.sha256((fingerprint + json.dumps(config, sort_keys=True)).encode()).hexdigest()
    version = version_id(run_date, key)
    registry = Registry(settings)
    if registry.exists(version):
        return promotion.reuse_version(registry, version)

    train, valid = split_out_of_time(frame, settings.validation_days)
    check_rows(train, MIN_ROWS // 2, MIN_CLASS_ROWS // 2, "training part (older cohorts)")
    check_rows(valid, MIN_VALIDATION_ROWS, MIN_VALIDATION_CLASS_ROWS,
               f"validation part (last {settings.validation_days} days of cohorts)")
    y_val = valid["retained"].to_numpy()

    # 1. candidates, tuned on the older cohorts only, judged on the validation cohorts
    candidates = candidate_list(train, features, directions, settings.seed)
    fitted: dict[str, ChurnModel] = {}
    rows = []
    for cand in candidates:
        model = fit_candidate(cand, train, features, directions, settings.seed)
        fitted[cand.name] = model
        p = model.predict_proba(valid)
        rows.append(cand.describe() | {"validation": evaluate.probability_metrics(y_val, p)})
    winner = candidates[select_winner(rows)]
    oot_model = fitted[winner.name]

    # 2. calibration (decided on out-of-fold validation log-loss) and threshold
    margin_val = oot_model.raw_margin(oot_model.matrix(valid))
    p_raw = expit(margin_val)
    p_cal = evaluate.cross_fitted_platt(margin_val, y_val, valid["eval_start_date"].to_numpy())
    calibration = None
    raw_loss, cal_loss = score_summary(y_val, p_raw)["log_loss"], score_summary(y_val, p_cal)["log_loss"]
    if cal_loss < raw_loss - TIE:
        calibration = evaluate.fit_platt(margin_val, y_val)
        if calibration["a"] <= 0:  # a non-increasing calibration would break monotonicity and reasons
            calibration = None
    p_oot = p_cal if calibration else p_raw
    threshold = evaluate.choose_threshold(y_val, p_oot, settings.threshold_objective,
                                          days=valid["eval_start_date"].to_numpy())
    metrics = evaluate.full_metrics(y_val, p_oot, threshold)

    # 3. refit the winner on the whole window; bands from the training distribution
    final = fit_candidate(winner, frame, features, directions, settings.seed)
    final.calibration, final.threshold, final.version = calibration, threshold, version
    final.objective = settings.threshold_objective
    p_window = final.predict_proba(frame)
    final.band_edges = [float(v) for v in np.quantile(p_window, np.linspace(0.1, 0.9, 9))]
    p_served_val = final.predict_proba(valid)
    importance = feature_importance(final, final.matrix(valid))

    # 4. promotion decision on the same validation rows as the current champion
    decision = promotion.decide(registry, settings, valid, p_oot, metrics, frame)

    metrics_doc = {
        "validation": metrics,
        "validation_uncalibrated": evaluate.probability_metrics(y_val, p_raw),
        "calibration": {"applied": calibration is not None, "params": calibration,
                        "cross_fitted_log_loss": cal_loss, "uncalibrated_log_loss": raw_loss},
        "calibration_table": evaluate.calibration_table(y_val, p_oot),
        "lift_by_decile": evaluate.lift_by_decile(y_val, p_oot),
        "threshold": {"objective": settings.threshold_objective, "value": threshold},
        "selected": winner.name,
        "candidates": rows,
        "importance": importance,
        "promotion": decision,
        "served_model_on_validation_rows": {
            "note": "in-sample for the refitted model; the headline metrics above are out of time",
            **evaluate.probability_metrics(y_val, p_served_val),
        },
    }
    metadata = {
        "name": settings.model_name, "version": version, "run_date": run_date.isoformat(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kind": final.kind, "candidate": winner.name, "params": winner.params, "rounds": winner.rounds,
        "training_window": window,
        # read the exact rows back with read_partitions(INSTANCES_MODELING, days, settings, snapshot_id=…)
        "training_data": {"table": INSTANCES_MODELING.name, "snapshot_id": snapshot_id},
        "eval_start_range": artifacts.date_range(frame), "train_eval_start_range": artifacts.date_range(train),
        "validation_eval_start_range": artifacts.date_range(valid),
        "rows": {"total": len(frame), "train": len(train), "validation": len(valid)},
        "label_rate": {"total": float(frame["retained"].mean()), "train": float(train["retained"].mean()),
                       "validation": float(y_val.mean())},
        # what scoring needs to explain a reason to a person: the label and what converting trials did
        "features": [{"name": f, "dtype": d, "kind": k, "direction": directions.get(f, 0),
                      "label": feature_config.label(f), "converted_median": artifacts.median(frame.loc[frame["retained"] == 1, f])}
                     for f, d, k in zip(final.transform.features, final.transform.dtypes, final.transform.kinds,
                                        strict=True)],
        "data_fingerprint": fingerprint, "training_key": key, "config": config,
        "metrics": artifacts.headline_metrics(metrics), "threshold": threshold, "calibration": calibration,
        "band_edges": final.band_edges, "decision": decision,
        "libraries": artifacts.library_versions(), "code_version": config["code"],
    }
    files = final.artifacts()
    metadata["model_files"] = sorted(files)
    files["metrics.json"] = json.dumps(metrics_doc, indent=1, default=artifacts.json_default).encode()
    files["validation_scores.parquet"] = artifacts.validation_scores_parquet(valid, p_oot, p_served_val)
    files[PROFILE_FILE] = json.dumps(build_profile(frame, features), indent=1).encode()  # what drift compares with
    files["report.html"] = report.build_report(metadata, metrics_doc, y_val, p_oot, fitted, valid).encode()
    result = {
        "version": version, "promoted": decision["promoted"], "reason": decision["reason"],
        "held": bool(decision.get("held")),
        "champion_version": version if decision["promoted"] else decision.get("champion_version"),
        "model": winner.name, "metrics": artifacts.headline_metrics(metrics), "rows": metadata["rows"],
        "report": registry.artifact_path(version, "report.html"), "reused": False,
    }
    metadata["result"] = result
    registry.write_version(version, files, metadata)
    result["promoted"], result["reason"] = promotion.apply_decision(
        registry, version, decision, rejudge=lambda: promotion.decide(registry, settings, valid, p_oot, metrics, frame))
    if not result["promoted"]:
        result["champion_version"] = (registry.alias("champion") or {}).get("version")
    result["seconds"] = round(time.perf_counter() - started, 1)
    log.info("retrain %s: %s (%s) in %.1f s", run_date, version, decision["reason"], result["seconds"])
    return result


def select_winner(rows: list[dict]) -> int:
    """Index of the lowest validation log-loss; within TIE of it, the highest AUC wins."""
    best = min(r["validation"]["log_loss"] for r in rows)
    tied = [i for i, r in enumerate(rows) if r["validation"]["log_loss"] <= best + TIE]
    return max(tied, key=lambda i: (rows[i]["validation"]["roc_auc"], -i))


def feature_importance(model: ChurnModel, x_valid: np.ndarray) -> list[dict]:
    contribs = model.contributions(x_valid)[:, :-1]
    mean_abs = np.abs(contribs).mean(axis=0)
    if model.kind == "xgboost":
        gain = model.booster.get_score(importance_type="gain")
        total = model.booster.get_score(importance_type="total_gain")
    else:
        gain = {f: float(abs(c)) for f, c in zip(model.features, model.linear.coef, strict=True)}
        total = {}
    out = [{"feature": f, "gain": float(gain.get(f, 0.0)),
            "total_gain": float(total.get(f, 0.0)) if model.kind == "xgboost" else None,  # a linear model has no gain
            "mean_abs_contribution": float(v)} for f, v in zip(model.features, mean_abs, strict=True)]
    return sorted(out, key=lambda r: -r["mean_abs_contribution"])


