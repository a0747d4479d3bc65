"""Threshold choice and the metric helpers, checked against brute force / scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import fbeta_score

from churn.models import evaluate


@pytest.fixture(scope="module")
def forecast():
    rng = np.random.default_rng(3)
    p = rng.uniform(size=600).round(3)  # rounding creates ties
    y = (rng.uniform(size=600) < p).astype(int)
    return y, p


@pytest.mark.parametrize("objective,beta", [("f1", 1), ("f2", 2), ("fbeta:0.5", 0.5)])
def test_threshold_maximises_fbeta_of_the_at_risk_decision(forecast, objective, beta):
    y, p = forecast
    chosen = evaluate.choose_threshold(y, p, objective)
    churned = 1 - y

    def f(t):
        return fbeta_score(churned, (p < t).astype(int), beta=beta)

    best = max(f(t) for t in [*np.nextafter(np.unique(p), 2), 0.0])
    assert f(chosen) == pytest.approx(best, abs=1e-12)


def test_cost_threshold_minimises_cost(forecast):
    y, p = forecast

    def cost(t):
        flagged = p < t
        return 5 * np.sum((y == 0) & ~flagged) + np.sum((y == 1) & flagged)  # missed at-risk cost 5 contacts

    chosen = evaluate.choose_threshold(y, p, "cost:5")
    assert cost(chosen) == min(cost(t) for t in [*np.nextafter(np.unique(p), 2), 0.0])
    # a higher cost of a missed at-risk trial never flags fewer trials
    assert evaluate.choose_threshold(y, p, "cost:0.5") <= chosen <= evaluate.choose_threshold(y, p, "cost:20")


def test_capacity_objectives_flag_the_riskiest_up_to_capacity(forecast):
    y, p = forecast
    days = np.repeat(np.arange(6), 100)  # six days of 100 trials
    cut = evaluate.choose_threshold(y, p, "top:10", days=days)
    assert np.mean(p < cut) == pytest.approx(0.10, abs=0.02)
    cut = evaluate.choose_threshold(y, p, "top:0.25")
    assert np.mean(p < cut) == pytest.approx(0.25, abs=0.02)


@pytest.mark.parametrize("objective", ["f3", "cost:", "cost:abc", "cost:-1", "top:0", "top:2.5", "fbeta:x"])
def test_bad_objective_is_a_clear_error(forecast, objective):
    with pytest.raises(ValueError, match="threshold objective"):
        evaluate.choose_threshold(*forecast, objective)


@pytest.mark.parametrize("churn_rate", [0.06, 0.80])
def test_the_default_rule_flags_a_sensible_set_at_any_base_rate(churn_rate):
    """Near 6% churn the old rule (F2 of *retained*) flagged almost nobody; near 80% churn F-beta rules of the
    at-risk class flag (almost) everyone. The default, the riskiest fifth of each day, is a set a team can act
    on at both, and far better than picking at random."""
    from churn.core.settings import Settings

    rng = np.random.default_rng(5)
    n = 20000
    score = rng.normal(size=n)
    intercept = np.log((1 - churn_rate) / churn_rate)
    p_true = 1 / (1 + np.exp(-(intercept + 1.6 * score)))  # a model with AUC ~0.85
    y = (rng.uniform(size=n) < p_true).astype(int)
    objective = Settings(_env_file=None).threshold_objective
    m = evaluate.threshold_metrics(y, p_true, evaluate.choose_threshold(y, p_true, objective))
    churned = 1 - y.mean()
    assert m["flagged_share"] == pytest.approx(0.2, abs=0.01)
    if churned < 0.5:  # flagged trials churn at well over twice the base rate
        assert m["at_risk_precision"] > 2.5 * churned
    else:  # half-way from random to perfect precision
        assert m["at_risk_precision"] > churned + 0.5 * (1 - churned)
    assert m["at_risk_recall"] > 0.2  # more of the churners than a random fifth
    f2 = evaluate.threshold_metrics(y, p_true, evaluate.choose_threshold(y, p_true, "f2"))
    if churn_rate < 0.5:  # the rule this replaced, F2 of the *retained* class, flags almost nobody here
        cuts = np.quantile(p_true, np.linspace(0, 0.5, 51))
        old = max(cuts, key=lambda t: fbeta_score(y, (p_true >= t).astype(int), beta=2))
        assert np.mean(p_true < old) < 0.02 and 0.05 < f2["flagged_share"] < 0.5
    else:  # F2 of at-risk is sensible at 6% but flags nearly everyone at 80%: why it is not the default
        assert f2["flagged_share"] > 0.9


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
