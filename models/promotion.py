"""The promotion rule: when a newly trained version replaces the champion, is kept as challenger, or is held.

Judged on the same out-of-time validation rows for both models, with a paired bootstrap (PROMOTION_RULE);
labels that look wrong hold any model for a person. Training calls it; the report quotes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from churn.core.settings import Settings
from churn.models import evaluate
from churn.models.candidates import score_summary
from churn.models.registry import Registry, RegistryError
from churn.models.transform import SchemaMismatch

log = logging.getLogger(__name__)
MIN_COMPARE_ROWS = 200  # newer-than-the-champion rows needed to compare on them alone


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
        reason = f"stays challenger to {champion.version}: {'; '.join(problems)} ({measured})"
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


def apply_decision(registry: Registry, version: str, decision: dict,
                   rejudge: Callable[[], dict] | None = None, attempts: int = 3) -> tuple[bool, str]:
    """Record the decision; (promoted, reason). A promotion is a compare-and-swap on the champion it was judged
    against: when another training promoted first, this version is judged again against the new champion
    (``rejudge``), or, without one, kept as a challenger."""
    from churn.models.registry import ConcurrentUpdate

    for attempt in range(1, attempts + 1):
        if not decision["promoted"]:
            registry.mark_challenger(version, decision["reason"])
            return False, decision["reason"]
        try:
            registry.promote(version, decision["reason"], expected_champion=decision.get("champion_version"))
            return True, decision["reason"]
        except ConcurrentUpdate as exc:
            if rejudge is None or attempt == attempts:
                reason = f"not promoted: {exc}; compare the two with `churn models list`"
                registry.mark_challenger(version, reason)
                return False, reason
            log.info("%s: %s; judging it again against the new champion", version, exc)
            decision = rejudge()
    raise AssertionError("unreachable")


def reuse_version(registry: Registry, version: str) -> dict:
    """A rerun with the same data and configuration returns the registered version (idempotent)."""
    metadata = registry.verify(version)
    result = dict(metadata["result"]) | {"reused": True}
    if not any(e["version"] == version for e in registry.history()):  # crashed before the decision was applied
        result["promoted"], result["reason"] = apply_decision(registry, version, metadata["decision"])
    champion = registry.alias("champion")
    result["promoted"] = bool(champion and champion["version"] == version and result["promoted"])
    log.info("model version %s already registered; nothing to train", version)
    return result
