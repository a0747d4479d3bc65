"""Metrics of a probability forecast of ``retained`` (positive class = retained, as in the seed).

Headline metrics are computed on out-of-time validation rows only. Threshold-free: ROC AUC, PR AUC,
log-loss, Brier, expected calibration error. At the chosen threshold: accuracy, precision, recall,
F1, F2, confusion matrix, classification report. Plus lift by churn-risk decile.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit
from sklearn import metrics as skm

from churn.core.settings import parse_objective

EPS = 1e-7


def threshold_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    """Metrics of the decision "at risk" (p_retained < threshold) — the trials someone acts on — and, for
    completeness, of its complement "predicted retained"; every name says which class it is about."""
    pred = (p >= threshold).astype(int)
    cm = skm.confusion_matrix(y, pred, labels=[0, 1])
    at_risk, churned = 1 - pred, 1 - np.asarray(y).astype(int)
    return {
        "threshold": float(threshold),
        "flagged_share": float(at_risk.mean()) if len(at_risk) else float("nan"),
        "at_risk_precision": float(skm.precision_score(churned, at_risk, zero_division=0)),
        "at_risk_recall": float(skm.recall_score(churned, at_risk, zero_division=0)),
        "at_risk_f1": float(skm.fbeta_score(churned, at_risk, beta=1, zero_division=0)),
        "at_risk_f2": float(skm.fbeta_score(churned, at_risk, beta=2, zero_division=0)),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "f1": float(skm.fbeta_score(y, pred, beta=1, zero_division=0)),
        "f2": float(skm.fbeta_score(y, pred, beta=2, zero_division=0)),
        "confusion_matrix": {"labels": ["churned (0)", "retained (1)"], "rows_true_cols_pred": cm.tolist()},
        "classification_report": skm.classification_report(
            y, pred, labels=[0, 1], target_names=["churned", "retained"], output_dict=True, zero_division=0
        ),
        "classification_report_text": skm.classification_report(
            y, pred, labels=[0, 1], target_names=["churned", "retained"], zero_division=0, digits=3
        ),
    }


def probability_metrics(y: np.ndarray, p: np.ndarray) -> dict:
    y = np.asarray(y)
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    both = len(np.unique(y)) == 2
    return {
        "rows": int(len(y)),
        "label_rate": float(y.mean()) if len(y) else float("nan"),
        "roc_auc": float(skm.roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(skm.average_precision_score(y, p)) if both else float("nan"),
        "log_loss": float(skm.log_loss(y, p, labels=[0, 1])),
        "brier": float(skm.brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "top_decile_churn_lift": lift_by_decile(y, p)[0]["churn_lift"] if len(y) >= 10 else float("nan"),
    }


def _row_log_losses(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Each row's log-loss (p clipped away from 0 and 1); their mean is the log-loss."""
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def per_row_standard_errors(y: np.ndarray, p: np.ndarray) -> dict:
    """Standard errors of the mean log-loss and Brier score (means of per-row losses), so a daily value is
    shown with its interval, and of the observed rate. NaN for fewer than two rows."""
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    if len(y) < 2:
        return {"log_loss_se": float("nan"), "brier_se": float("nan"), "observed_rate_se": float("nan")}
    n = len(y)
    return {"log_loss_se": float(_row_log_losses(y, p).std(ddof=1) / np.sqrt(n)),
            "brier_se": float(((p - y) ** 2).std(ddof=1) / np.sqrt(n)),
            "observed_rate_se": float(y.std(ddof=1) / np.sqrt(n))}


def _auc_by_ranks(y: np.ndarray, p: np.ndarray) -> float:
    """Mann-Whitney AUC (ties get half credit), fast enough to repeat a thousand times."""
    from scipy.stats import rankdata

    n_pos = y.sum()
    n_neg = len(y) - n_pos
    if not (n_pos and n_neg):
        return float("nan")
    return float((rankdata(p)[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def paired_bootstrap(y: np.ndarray, p_new: np.ndarray, p_old: np.ndarray, rounds: int = 500, seed: int = 0,
                     z_level: float = 0.95) -> dict:
    """How much better the new model is than the old on the same rows, with a 95% percentile interval.

    Both models are scored on the *same* resampled rows each round, so the interval is of the difference
    itself (paired): far narrower than comparing two separate intervals. Deterministic for a seed.
    ``delta_auc`` > 0 and ``delta_log_loss`` < 0 favour the new model.
    """
    y = np.asarray(y).astype(int)
    p_new, p_old = np.asarray(p_new, dtype=np.float64), np.asarray(p_old, dtype=np.float64)
    loss_new, loss_old = _row_log_losses(y, p_new), _row_log_losses(y, p_old)
    rng = np.random.default_rng(seed)
    auc_deltas, loss_deltas = np.empty(rounds), np.empty(rounds)
    for r in range(rounds):
        idx = rng.integers(0, len(y), len(y))
        auc_deltas[r] = _auc_by_ranks(y[idx], p_new[idx]) - _auc_by_ranks(y[idx], p_old[idx])
        loss_deltas[r] = loss_new[idx].mean() - loss_old[idx].mean()
    tail = (1 - z_level) / 2 * 100
    auc_low, auc_high = np.nanpercentile(auc_deltas, [tail, 100 - tail])
    loss_low, loss_high = np.percentile(loss_deltas, [tail, 100 - tail])
    return {"rounds": rounds, "rows": int(len(y)),
            "delta_auc": _auc_by_ranks(y, p_new) - _auc_by_ranks(y, p_old),
            "delta_auc_low": float(auc_low), "delta_auc_high": float(auc_high),
            "delta_log_loss": float(loss_new.mean() - loss_old.mean()),
            "delta_log_loss_low": float(loss_low), "delta_log_loss_high": float(loss_high)}


def log_loss_interval(y: np.ndarray, p: np.ndarray, z: float = 1.96) -> tuple[float, float]:
    """95% interval of a mean log-loss (the mean of per-row losses, normal approximation)."""
    loss, se = float(_row_log_losses(y, p).mean()), per_row_standard_errors(y, p)["log_loss_se"]
    return loss - z * se, loss + z * se


def auc_interval(auc: float, n_pos: int, n_neg: int, z: float = 1.96) -> tuple[float, float]:
    """Approximate 95% interval of an AUC measured on ``n_pos`` positives and ``n_neg`` negatives (Hanley &
    McNeil 1982): on a day with few outcomes it is wide, and a low AUC there is not yet evidence."""
    if not (n_pos and n_neg) or auc is None or np.isnan(auc):
        return float("nan"), float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    se = float(np.sqrt(max(var, 0.0)))
    return max(0.0, auc - z * se), min(1.0, auc + z * se)


def full_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    return probability_metrics(y, p) | threshold_metrics(y, p, threshold)


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Row-weighted mean |observed rate - mean forecast| over equal-width probability bins."""
    table = calibration_table(y, p, bins)
    n = sum(row["rows"] for row in table)
    return float(sum(row["rows"] * abs(row["observed"] - row["predicted"]) for row in table) / max(n, 1))


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    idx = np.minimum((np.asarray(p) * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        mask = idx == b
        if mask.any():
            out.append({"bin": b, "rows": int(mask.sum()), "predicted": float(p[mask].mean()),
                        "observed": float(np.asarray(y)[mask].mean())})
    return out


def lift_by_decile(y: np.ndarray, p: np.ndarray) -> list[dict]:
    """Deciles of churn risk (1 = lowest p_retained): churn rate and lift over the overall churn rate."""
    y = np.asarray(y)
    churn = 1 - y
    order = np.argsort(p, kind="stable")
    base = churn.mean() if len(y) else float("nan")
    out = []
    for d, chunk in enumerate(np.array_split(order, 10), start=1):
        rate = float(churn[chunk].mean()) if len(chunk) else float("nan")
        out.append({"decile": d, "rows": int(len(chunk)), "churn_rate": rate,
                    "churn_lift": float(rate / base) if base else float("nan"),
                    "mean_p_retained": float(np.mean(p[chunk])) if len(chunk) else float("nan")})
    return out


def choose_threshold(y: np.ndarray, p: np.ndarray, objective: str = "f2", days: np.ndarray | None = None) -> float:
    """The cut on p_retained below which a trial is flagged ``at_risk``, best on these rows for the objective.

    The decision is about the at-risk (churned) class, whatever the base rate: ``f1`` / ``f2`` / ``fbeta:b``
    maximise F-beta of at-risk (beta > 1 weighs missing an at-risk trial more than contacting a safe one);
    ``cost:<r>`` minimises r * missed at-risk + flagged safe trials. Capacity objectives flag the riskiest
    ``top:N`` trials of each day (``days``: the cohort day of each row) or a ``top:0.1`` fraction; the
    threshold returned for them is the cut that flags that many on these rows (for the report; scoring
    ranks each day). Ties go to the lower threshold (fewer flags).
    """
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=np.float64)
    kind, value = parse_objective(objective)
    if kind in ("top", "share"):
        if kind == "top":
            per_day = np.bincount(np.unique(days, return_inverse=True)[1]) if days is not None else np.array([len(p)])
            share = min(1.0, value / max(float(per_day.mean()), 1.0))
        else:
            share = value
        return float(np.quantile(p, share)) if len(p) else 0.5
    order = np.argsort(p, kind="stable")  # riskiest first: flagging the first k rows
    ps, churned = p[order], 1 - y[order]
    last_of_value = np.r_[ps[1:] != ps[:-1], True]
    tp = np.cumsum(churned)[last_of_value]  # at-risk flagged and churned
    fp = np.cumsum(1 - churned)[last_of_value]  # flagged but converted
    cuts = np.nextafter(ps[last_of_value], np.inf)  # flag p < cut, i.e. up to and including this value
    positives = churned.sum()
    fn = positives - tp
    if kind == "cost":
        score = -(value * fn + fp)
        cuts, score = np.r_[ps[0], cuts], np.r_[-(value * positives), score]  # also: flag nobody
    else:
        beta2 = value * value
        score = (1 + beta2) * tp / np.maximum((1 + beta2) * tp + beta2 * fn + fp, 1)
    best = np.flatnonzero(score == score.max())
    return float(cuts[best[0]])  # cuts ascend, so the first best flags the fewest


def fit_platt(margin: np.ndarray, y: np.ndarray) -> dict:
    """Platt scaling p = sigmoid(a * margin + b), fitted by unpenalised logistic regression on the margin."""
    from churn.models.model import LogisticModel

    fitted = LogisticModel.fit(np.asarray(margin, dtype=np.float64).reshape(-1, 1), y, l2=1e-6)
    return {"a": float(fitted.coef[0]), "b": float(fitted.intercept)}


def cross_fitted_platt(margin: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Out-of-fold calibrated probabilities: fit on the other half of the cohorts, apply to this half."""
    halves = _two_halves(groups)
    out = np.empty(len(y))
    for h in (0, 1):
        fit_mask = halves != h
        if len(np.unique(y[fit_mask])) < 2:
            return expit(margin)
        cal = fit_platt(margin[fit_mask], y[fit_mask])
        out[~fit_mask] = expit(cal["a"] * margin[~fit_mask] + cal["b"])
    return out


def _two_halves(groups: np.ndarray) -> np.ndarray:
    """0 for rows of the older half of the distinct groups (dates), 1 for the newer half."""
    distinct = np.unique(groups)
    if len(distinct) < 2:
        return (np.arange(len(groups)) % 2).astype(int)
    newer = set(distinct[len(distinct) // 2:].tolist())
    return np.array([g in newer for g in groups.tolist()], dtype=int)


def wilson_interval(p, n, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion ``p`` of ``n``: sensible also near 0 or 1 and at small n."""
    p, n = np.asarray(p, dtype=float), np.maximum(np.asarray(n, dtype=float), 1)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half

