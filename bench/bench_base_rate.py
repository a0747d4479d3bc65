"""Decisions at any base rate: which share of trials each threshold rule flags at_risk, and how right it is.

The product's own rule (``churn.models.evaluate.choose_threshold`` with the default ``CHURN_THRESHOLD_OBJECTIVE``)
against, in the same run, the rule it replaced (F2 of the *retained* class) and F2 of the at-risk class, on
forecasts of the same quality (AUC ~0.85, calibrated) at churn rates from 6% to 80%. Writes docs/benchmarks.md
(section "Decisions at any base rate").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import fbeta_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import record  # noqa: E402
from churn.core.settings import Settings  # noqa: E402
from churn.models import evaluate  # noqa: E402


def forecast(churn_rate: float, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated p_retained of a model with AUC ~0.85 whose mean churn is ``churn_rate``."""
    from scipy.optimize import brentq
    from scipy.special import expit

    score = rng.normal(size=n)
    intercept = brentq(lambda b: 1 - expit(b + 1.6 * score).mean() - churn_rate, -20, 20)
    p = expit(intercept + 1.6 * score)
    return (rng.uniform(size=n) < p).astype(int), p


def old_rule(y: np.ndarray, p: np.ndarray) -> float:
    """The replaced default: the cut maximising F2 of *retained* (p >= cut means retained)."""
    cuts = np.quantile(p, np.linspace(0, 0.5, 51))
    return float(max(cuts, key=lambda t: fbeta_score(y, (p >= t).astype(int), beta=2)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args(argv)
    default = Settings(_env_file=None).threshold_objective
    rng = np.random.default_rng(5)
    for churn_rate in (0.06, 0.23, 0.50, 0.80):
        y, p = forecast(churn_rate, args.rows, rng)
        churned = 1 - y.mean()
        cells = []
        for cut in (old_rule(y, p), evaluate.choose_threshold(y, p, "f2"), evaluate.choose_threshold(y, p, default)):
            m = evaluate.threshold_metrics(y, p, cut)
            cells.append(f"{m['flagged_share']:.1%} / {m['at_risk_precision']:.2f} / {m['at_risk_recall']:.2f}")
        record("Decisions at any base rate",
               ["churn rate", "rows", "old rule: F2 of retained — flagged / precision / recall of at_risk",
                "F2 of at_risk", f"default `{default}`", "precision of a random pick"],
               [f"{churned:.0%}", args.rows, *cells, f"{churned:.2f}"], key=f"{churned:.0%}")
        print(churn_rate, cells)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
