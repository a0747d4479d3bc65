"""The reference profile of a model version: what drift is measured against, computed once at training time.

For every model feature: decile edges of its training distribution, the share of rows in each bin
(nulls a bin of their own), mean and null rate — over the whole training window and, separately, over
the cohorts that started on each weekday. A day's cohort starts on one weekday and its first week then
holds the weekend at a fixed place, so activity features are compared with training cohorts of the same
weekday; against all weekdays they would "drift" every week by construction.

Stored as ``reference_profile.json`` next to the model (a few KB), so daily monitoring reads one small
verified file instead of the 90 partitions of the training window.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.core.feature_config import BUILTIN_SPECS

PROFILE_FILE = "reference_profile.json"
BINS = 10
WEEKDAY_COLUMN = "eval_start_weekday"
MIN_WEEKDAY_ROWS = 200  # fewer training rows of a weekday than this: compare with all weekdays
# Constant within one day's cohort by construction (FeatureSpec.drift_exempt): its PSI against a window is huge.
DRIFT_EXEMPT = tuple(name for name, spec in BUILTIN_SPECS.items() if spec.drift_exempt)


def _floats(values) -> np.ndarray:
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)


def bin_edges(reference: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Inner quantile edges of the finite values; repeated values (counts) give fewer, wider bins."""
    finite = reference[~np.isnan(reference)]
    if not len(finite):
        return np.array([])
    return np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))


def shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of values per bin: (-inf, e0], (e0, e1], …, (e_last, inf), then nulls."""
    values = _floats(values)
    missing = np.isnan(values)
    counts = np.bincount(np.searchsorted(edges, values[~missing], side="left"), minlength=len(edges) + 1)
    return np.append(counts, missing.sum()) / max(len(values), 1)


def psi_from_shares(expected, actual, eps: float = 1e-4) -> float:
    expected = np.clip(np.asarray(expected, dtype=np.float64), eps, None)
    actual = np.clip(np.asarray(actual, dtype=np.float64), eps, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def psi(reference, current, bins: int = BINS) -> float:
    """Population stability index of ``current`` against ``reference`` over the reference's quantile bins.

    Conventional reading: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 major shift.
    """
    reference, current = _floats(reference), _floats(current)
    if len(reference) == 0 or len(current) == 0:
        return float("nan")
    edges = bin_edges(reference, bins)
    return psi_from_shares(shares(reference, edges), shares(current, edges))


def _group(values: np.ndarray) -> dict:
    edges = bin_edges(values)
    finite = values[~np.isnan(values)]
    return {
        "rows": int(len(values)),
        "edges": [float(e) for e in edges],
        "shares": [float(s) for s in shares(values, edges)],
        "mean": float(finite.mean()) if len(finite) else None,
        "null_rate": float(np.isnan(values).mean()) if len(values) else None,
    }


def build_profile(frame: pd.DataFrame, features: list[str]) -> dict:
    """The profile of the training rows ``frame`` for ``features`` (JSON-ready)."""
    weekdays = frame[WEEKDAY_COLUMN].to_numpy() if WEEKDAY_COLUMN in frame.columns else None
    profile = {"rows": int(len(frame)), "min_weekday_rows": MIN_WEEKDAY_ROWS, "features": {}}
    for name in features:
        if name in DRIFT_EXEMPT or name not in frame.columns:
            continue
        values = _floats(frame[name])
        entry = {"all": _group(values), "by_weekday": {}}
        if weekdays is not None:
            for day in sorted(set(int(w) for w in weekdays if pd.notna(w))):
                chosen = values[weekdays == day]
                if len(chosen) >= MIN_WEEKDAY_ROWS:
                    entry["by_weekday"][str(day)] = _group(chosen)
        profile["features"][name] = entry
    return profile


def reference_group(profile: dict, feature: str, current: pd.DataFrame) -> dict | None:
    """The training group today's cohort is compared with: its weekday's, or all rows when that is too thin."""
    entry = profile["features"].get(feature)
    if entry is None:
        return None
    days = {int(w) for w in current[WEEKDAY_COLUMN].dropna().unique()} if WEEKDAY_COLUMN in current.columns else set()
    if len(days) == 1:
        return entry["by_weekday"].get(str(days.pop()), entry["all"])
    return entry["all"]


def drift_of(group: dict, values) -> float:
    """PSI of ``values`` against a stored profile group."""
    return drift_test(group, values)[0]


def drift_test(group: dict, values) -> tuple[float, float]:
    """PSI of ``values`` against a stored profile group, and the p-value of a shift that large by chance.

    PSI alone ignores sample size: on ~150 trials a day a bin expected to hold 2% is empty one day in
    twenty, and that alone adds ~0.1 to the PSI. The p-value is that of a chi-square test of homogeneity
    between the day's bin counts and the training rows' (counts = shares x rows, both samples noisy).
    """
    values = _floats(values)
    if not len(values) or not group["rows"]:
        return float("nan"), float("nan")
    current = shares(values, np.asarray(group["edges"]))
    return psi_from_shares(group["shares"], current), homogeneity_p_value(group["shares"], group["rows"], current,
                                                                            len(values))


def homogeneity_p_value(reference_shares, reference_rows: int, current_shares, current_rows: int) -> float:
    """Chi-square test of homogeneity of two binned samples given as shares and row counts (1.0: no evidence)."""
    from scipy.stats import chi2_contingency

    table = np.vstack([np.asarray(reference_shares, dtype=np.float64) * reference_rows,
                       np.asarray(current_shares, dtype=np.float64) * current_rows])
    table = table[:, table.sum(axis=0) > 0]  # bins empty in both samples carry no information
    if table.shape[1] < 2 or current_rows == 0 or reference_rows == 0:
        return 1.0
    return float(chi2_contingency(table, correction=False)[1])
