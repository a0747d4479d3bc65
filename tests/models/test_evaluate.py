"""Threshold choice and the metric helpers, checked against brute force / scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import fbeta_score

from models import evaluate


@pytest.fixture(scope="module")
def forecast():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=600).round(3)  # rounding creates ties
    y = (rng.uniform(size=600) < p).astype(int)
    return y, p


@pytest.mark.parametrize("objective,beta", [("f1", 1), ("f2", 2)])
def test_threshold_maximises_fbeta(forecast, objective, beta):
    y, p = forecast
    chosen = evaluate.choose_threshold(y, p, objective)
    best = max(fbeta_score(y, (p >= t).astype(int), beta=beta) for t in np.unique(p))
    assert fbeta_score(y, (p >= chosen).astype(int), beta=beta) == pytest.approx(best, abs=1e-12)


def test_cost_threshold_minimises_cost(forecast):
    y, p = forecast

    def cost(t):
        pred = p >= t
        return 5 * np.sum((y == 1) & ~pred) + np.sum((y == 0) & pred)

    chosen = evaluate.choose_threshold(y, p, "cost:5")
    assert cost(chosen) == min(cost(t) for t in [*np.unique(p), 1.1])
    # a higher cost of missed retained instances never raises the threshold
    assert evaluate.choose_threshold(y, p, "cost:20") <= chosen <= evaluate.choose_threshold(y, p, "cost:0.5")


@pytest.mark.parametrize("objective", ["f3", "cost:", "cost:abc", "cost:-1"])
def test_bad_objective_is_a_clear_error(forecast, objective):
    with pytest.raises(ValueError, match="threshold objective"):
        evaluate.choose_threshold(*forecast, objective)


def test_ece_is_zero_for_a_perfectly_calibrated_binned_forecast():
    p = np.repeat([0.05, 0.35, 0.75], 20)
    y = np.r_[np.repeat([1, 0], [1, 19]), np.repeat([1, 0], [7, 13]), np.repeat([1, 0], [15, 5])]
    assert evaluate.expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)
    assert evaluate.expected_calibration_error(y, np.full(60, 0.9)) > 0.4


def test_lift_puts_the_churners_in_the_first_decile():
    p = np.linspace(0, 1, 100)
    y = (p > 0.1).astype(int)  # the 10 lowest-p rows are exactly the churners
    lift = evaluate.lift_by_decile(y, p)
    assert lift[0]["churn_rate"] == 1.0 and lift[0]["churn_lift"] == pytest.approx(10.0)
    assert all(d["churn_rate"] == 0.0 for d in lift[1:])


def test_platt_recovers_a_known_miscalibration():
    rng = np.random.default_rng(0)
    margin = rng.normal(0, 2, size=20000)
    y = (rng.uniform(size=margin.size) < 1 / (1 + np.exp(-(0.5 * margin - 1.0)))).astype(int)
    cal = evaluate.fit_platt(margin, y)
    assert cal["a"] == pytest.approx(0.5, abs=0.05) and cal["b"] == pytest.approx(-1.0, abs=0.08)
