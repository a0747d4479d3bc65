"""Weekly retrain: last ``training_window_days`` of instances_modeling -> candidates -> registry -> promotion.

Out of time throughout: the most recent ``validation_days`` cohorts (by eval_start_date) validate,
the older ones train (and are split into time-ordered folds for tuning). The winner (lowest
validation log-loss, AUC breaks ties) is refitted on the whole window, Platt-calibrated only if
that improves out-of-fold validation log-loss, and its threshold is chosen on validation.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import platform
import subprocess
import time
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.special import expit

from churn.core.feature_config import load_feature_config
from churn.core.settings import PROJECT_ROOT, Settings
from churn.core.tables import INSTANCES_MODELING
from churn.core.warehouse import read_snapshot
from models import evaluate, report
from models.candidates import Candidate, candidate_list, feature_directions, fit_candidate, score_summary
from models.model import ChurnModel
from models.profile import PROFILE_FILE, build_profile
from models.registry import Registry, RegistryError, version_id
from models.transform import SchemaMismatch, feature_columns

log = logging.getLogger("churn.train")

MIN_ROWS = 1000
MIN_CLASS_ROWS = 50
MIN_VALIDATION_ROWS = 200
MIN_VALIDATION_CLASS_ROWS = 20
MIN_COMPARE_ROWS = 200
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


def code_version() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=5, check=True)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def library_versions() -> dict:
    import matplotlib
    import scipy
    import sklearn
    import xgboost

    return {"python": platform.python_version(), "xgboost": xgboost.__version__, "numpy": np.__version__,
            "pandas": pd.__version__, "pyarrow": pa.__version__, "scikit-learn": sklearn.__version__,
            "scipy": scipy.__version__, "matplotlib": matplotlib.__version__}


def _median(values: pd.Series) -> float | None:
    finite = pd.to_numeric(values, errors="coerce").dropna()
    return float(finite.median()) if len(finite) else None


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
              "threshold_objective": settings.threshold_objective, "window": window, "code": code_version(),
              "directions": directions}  # a changed direction is another model, not a reused version
    key = hashlib.sha256((fingerprint + json.dumps(config, sort_keys=True)).encode()).hexdigest()
    version = version_id(run_date, key)
    registry = Registry(settings)
    if registry.exists(version):
        return _reuse(registry, version)

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
    decision = decide(registry, settings, valid, p_oot, metrics, frame)

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
        "eval_start_range": _date_range(frame), "train_eval_start_range": _date_range(train),
        "validation_eval_start_range": _date_range(valid),
        "rows": {"total": len(frame), "train": len(train), "validation": len(valid)},
        "label_rate": {"total": float(frame["retained"].mean()), "train": float(train["retained"].mean()),
                       "validation": float(y_val.mean())},
        # what scoring needs to explain a reason to a person: the label and what converting trials did
        "features": [{"name": f, "dtype": d, "kind": k, "direction": directions.get(f, 0),
                      "label": feature_config.label(f), "converted_median": _median(frame.loc[frame["retained"] == 1, f])}
                     for f, d, k in zip(final.transform.features, final.transform.dtypes, final.transform.kinds,
                                        strict=True)],
        "data_fingerprint": fingerprint, "training_key": key, "config": config,
        "metrics": _subset(metrics), "threshold": threshold, "calibration": calibration,
        "band_edges": final.band_edges, "decision": decision,
        "libraries": library_versions(), "code_version": config["code"],
    }
    files = final.artifacts()
    metadata["model_files"] = sorted(files)
    files["metrics.json"] = json.dumps(metrics_doc, indent=1, default=_json_default).encode()
    files["validation_scores.parquet"] = _validation_scores(valid, p_oot, p_served_val)
    files[PROFILE_FILE] = json.dumps(build_profile(frame, features), indent=1).encode()  # what drift compares with
    files["report.html"] = report.build_report(metadata, metrics_doc, y_val, p_oot, fitted, valid).encode()
    result = {
        "version": version, "promoted": decision["promoted"], "reason": decision["reason"],
        "held": bool(decision.get("held")),
        "champion_version": version if decision["promoted"] else decision.get("champion_version"),
        "model": winner.name, "metrics": _subset(metrics), "rows": metadata["rows"],
        "report": registry.artifact_path(version, "report.html"), "reused": False,
    }
    metadata["result"] = result
    registry.write_version(version, files, metadata)
    result["promoted"], result["reason"] = _apply(registry, version, decision)
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


MIN_WEEK_ROWS = 50  # a cohort week's label rate is compared only with at least this many rows


def label_problems(frame: pd.DataFrame, settings: Settings, champ_meta: dict | None) -> list[str]:
    """Why the labels of a training window look wrong: a label rate (overall, or of a cohort week with enough
    rows) far from the champion's training data, or outside the plausible range when there is no champion."""
    rate = float(frame["retained"].mean())
    weeks = frame.groupby(frame["eval_start_date"].dt.to_period("W-SUN"))["retained"].agg(["mean", "size"])
    weeks = weeks[weeks["size"] >= MIN_WEEK_ROWS]
    if champ_meta is None or "label_rate" not in champ_meta:
        low, high = settings.label_rate_bounds
        if not low <= rate <= high:
            return [f"label rate {rate:.3f} is outside the plausible range {low}..{high} (CHURN_LABEL_RATE_RANGE)"]
        return []
    reference, tol = float(champ_meta["label_rate"]["total"]), settings.label_rate_tolerance
    problems = []
    if abs(rate - reference) > tol:
        problems.append(f"label rate {rate:.3f} vs {reference:.3f} in the champion's training data "
                        f"(tolerance {tol}, CHURN_LABEL_RATE_TOLERANCE)")
    moved = weeks[(weeks["mean"] - reference).abs() > tol]
    if len(moved):
        shown = ", ".join(f"week of {str(w.start_time.date())}: {m:.3f}" for w, m in moved["mean"].head(3).items())
        problems.append(f"{len(moved)} of {len(weeks)} cohort weeks have a label rate more than {tol} from "
                        f"{reference:.3f} ({shown})")
    return problems


def decide(registry: Registry, settings: Settings, valid: pd.DataFrame, p_new: np.ndarray, metrics: dict,
           frame: pd.DataFrame | None = None) -> dict:
    """Promote only if the labels look sane, the new model clears the floor and is not worse than the champion
    on the same rows. Suspicious labels hold the model as a challenger that only a person can promote."""
    floor, tol = settings.promotion_auc_floor, settings.promotion_auc_tolerance
    base = {"floor": floor, "auc_tolerance": tol, "new_auc": metrics["roc_auc"], "new_log_loss": metrics["log_loss"]}
    clears = metrics["roc_auc"] >= floor
    floor_text = f"validation AUC {metrics['roc_auc']:.4f} {'clears' if clears else 'is below'} the floor {floor}"
    try:
        record = registry.alias("champion")
        champion, champ_meta = registry.champion() if record else (None, None)
    except RegistryError as exc:
        return base | {"promoted": False, "champion_version": record["version"] if record else None,
                       "reason": f"not promoted: the current champion failed verification ({exc}); "
                                 "promote manually after investigating"}
    held = label_problems(frame if frame is not None else valid, settings, champ_meta)
    if held:
        return base | {"promoted": False, "held": True, "champion_version": champion.version if champion else None,
                       "label_problems": held,
                       "reason": "held for review, labels look wrong: " + "; ".join(held)
                                 + ". Check the label definition upstream; promote by hand with `churn models "
                                   "promote VERSION` if they are right"}
    if champion is None:
        return base | {"promoted": clears, "champion_version": None,
                       "reason": f"first model: {floor_text}" + ("" if clears else "; stays challenger")}
    base["champion_version"] = champion.version
    try:
        p_champ = champion.predict_proba(valid)
    except SchemaMismatch as exc:
        return base | {"promoted": clears, "reason": f"champion cannot score the current features ({exc}); {floor_text}"}
    # Compare on validation rows neither model trained on when there are enough of them.
    seen_until = pd.Timestamp(champ_meta["eval_start_range"]["max"])
    unseen = (valid["eval_start_date"] > seen_until).to_numpy()
    y = valid["retained"].to_numpy()
    if unseen.sum() >= MIN_COMPARE_ROWS and len(np.unique(y[unseen])) == 2:
        rows, note = unseen, "validation rows newer than the champion's training data"
    else:
        rows, note = np.ones(len(y), dtype=bool), "all validation rows (the champion trained on some of them)"
    new = score_summary(y[rows], p_new[rows])
    old = score_summary(y[rows], p_champ[rows])
    delta = evaluate.paired_bootstrap(y[rows], p_new[rows], p_champ[rows], seed=settings.seed)
    comparison = {"rows": int(rows.sum()), "rows_used": note, "new": new, "champion": old, "paired_bootstrap": delta}
    own = (champ_meta.get("metrics") or {}).get("roc_auc")
    if own is not None and old["roc_auc"] < own - settings.champion_auc_collapse:
        collapse = (f"the champion's AUC on these rows is {old['roc_auc']:.3f}, {own - old['roc_auc']:.3f} below its "
                    f"own validation AUC {own:.3f} (CHURN_CHAMPION_AUC_COLLAPSE {settings.champion_auc_collapse})")
        return base | {"promoted": False, "held": True, "label_problems": [collapse], "comparison": comparison,
                       "reason": f"held for review, labels look wrong: {collapse}. Check the label definition "
                                 "upstream; promote by hand with `churn models promote VERSION` if they are right"}
    verdict, problems = promotion_verdict(delta, clears, tol)
    if not clears:
        problems.insert(0, floor_text)
    measured = (f"AUC {new['roc_auc']:.4f} vs {old['roc_auc']:.4f} (difference {_signed(delta['delta_auc'])}, 95% "
                f"[{_signed(delta['delta_auc_low'])}, {_signed(delta['delta_auc_high'])}]), log-loss "
                f"{new['log_loss']:.4f} vs {old['log_loss']:.4f} (difference {_signed(delta['delta_log_loss'])}, 95% "
                f"[{_signed(delta['delta_log_loss_low'])}, {_signed(delta['delta_log_loss_high'])}]) on {rows.sum()} rows: {note}")
    if verdict == "better":
        reason = f"promoted over {champion.version}: better beyond noise: {measured}; {floor_text}"
    elif verdict == "tie":
        reason = (f"champion {champion.version} kept: the new model is not distinguishable from it ({measured}); "
                  "a switch would change predictions for no measured gain")
    else:
        reason = f"stays challenger: {'; '.join(problems)} ({measured})"
    return base | {"promoted": verdict == "better", "verdict": verdict, "reason": reason, "comparison": comparison}


PROMOTION_RULE = (
    "A new version replaces the champion only when, on the same validation rows (the newest cohorts, which the "
    "champion did not train on when there are enough of them), (1) its AUC clears the floor CHURN_PROMOTION_AUC_FLOOR, "
    "(2) it is not worse: its AUC is not more than CHURN_PROMOTION_AUC_TOLERANCE below the champion's and the 95% "
    "paired-bootstrap interval of its log-loss difference is not entirely above zero, and (3) it is better beyond "
    "noise: that log-loss interval lies entirely below zero, or the interval of its AUC difference entirely above "
    "zero. Otherwise the champion is kept: an indistinguishable model is not worth a switch. Labels that look wrong "
    "hold any model for a person to review.")


def promotion_verdict(delta: dict, clears_floor: bool, tolerance: float) -> tuple[str, list[str]]:
    """``better`` | ``tie`` | ``worse`` from a paired bootstrap (see PROMOTION_RULE), with the reasons it is worse."""
    problems = []
    if delta["delta_auc"] < -tolerance:
        problems.append(f"AUC is {-delta['delta_auc']:.4f} below the champion's (tolerance {tolerance})")
    if delta["delta_log_loss_low"] > 0:
        problems.append(f"log-loss is worse than the champion's beyond noise (+{delta['delta_log_loss']:.4f}, 95% "
                        f"interval above zero)")
    if problems or not clears_floor:
        return "worse", problems
    if delta["delta_log_loss_high"] < 0 or delta["delta_auc_low"] > 0:
        return "better", []
    return "tie", []


def _signed(value: float) -> str:
    return f"{value:+.4f}"


def _apply(registry: Registry, version: str, decision: dict) -> tuple[bool, str]:
    """Record the decision; (promoted, reason). A concurrent promotion that won makes this one a challenger."""
    from models.registry import ConcurrentUpdate

    if decision["promoted"]:
        try:
            registry.promote(version, decision["reason"])
            return True, decision["reason"]
        except ConcurrentUpdate as exc:
            reason = f"not promoted: {exc}; compare the two with `churn models list`"
            registry.mark_challenger(version, reason)
            return False, reason
    registry.mark_challenger(version, decision["reason"])
    return False, decision["reason"]


def _reuse(registry: Registry, version: str) -> dict:
    """A rerun with the same data and configuration returns the registered version (idempotent)."""
    metadata = registry.verify(version)
    result = dict(metadata["result"]) | {"reused": True}
    if not any(e["version"] == version for e in registry.history()):  # crashed before the decision was applied
        result["promoted"], result["reason"] = _apply(registry, version, metadata["decision"])
    champion = registry.alias("champion")
    result["promoted"] = bool(champion and champion["version"] == version and result["promoted"])
    log.info("model version %s already registered; nothing to train", version)
    return result


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


HEADLINE = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "accuracy", "precision", "recall", "f1", "f2",
            "threshold", "flagged_share", "at_risk_precision", "at_risk_recall", "at_risk_f2",
            "top_decile_churn_lift", "rows", "label_rate")


def _subset(metrics: dict) -> dict:
    return {k: metrics[k] for k in HEADLINE if k in metrics}


def _date_range(frame: pd.DataFrame) -> dict:
    return {"min": frame["eval_start_date"].min().date().isoformat(),
            "max": frame["eval_start_date"].max().date().isoformat()}


def _validation_scores(valid: pd.DataFrame, p_oot: np.ndarray, p_served: np.ndarray) -> bytes:
    table = pa.table({
        "instance_id": valid["instance_id"].astype(str).to_numpy(),
        "eval_start_date": pa.array(valid["eval_start_date"].dt.date, type=pa.date32()),
        "retained": valid["retained"].to_numpy().astype(np.int32),
        "p_out_of_time": p_oot.astype(np.float64),
        "p_served": p_served.astype(np.float64),
    })
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Candidate):
        return value.describe()
    raise TypeError(f"not JSON serialisable: {type(value)}")
