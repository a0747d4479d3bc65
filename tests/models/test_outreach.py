"""The outreach policy (churn.models.outreach): allocation under capacities, the holdout, propensities, incremental
Bayesian updates with lambda-learner, and the holdout's uplift estimate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn.models.outreach import (
    NONE,
    TERMS,
    OutreachError,
    PolicyConfig,
    PolicyState,
    allocate,
    assign,
    in_holdout,
    learn,
)
from churn.models.outreach_effect import off_policy_value, uplift

CONFIG = PolicyConfig(PolicyConfig.parse_channels("email:0.5:200,call:20:10"))


def _trials(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"instance_id": [f"i-{seed}-{k:05d}" for k in range(n)],
                         "log_odds": rng.normal(-1.0, 1.0, n),
                         "company_size_rank": rng.integers(1, 6, n).astype(float),
                         "mobile_share": rng.beta(1.5, 7, n)})


@pytest.mark.parametrize("text, problem", [
    ("email:0.5", "expected name:cost:daily_capacity"),
    ("email:x:10", "cost must be a number"),
    ("email:1:-3", "must be >= 0"),
    ("none:1:3", "a plain word other than 'none'"),
    ("email:1:3,email:2:4", "listed twice"),
])
def test_bad_channel_settings_are_named(text, problem):
    with pytest.raises(OutreachError, match=problem):
        PolicyConfig.parse_channels(text)


def test_the_holdout_is_a_fixed_random_share_per_version():
    ids = pd.Series([f"i-{k}" for k in range(20_000)])
    first = in_holdout(ids, "v1", 0.1)
    assert np.array_equal(first, in_holdout(ids, "v1", 0.1))  # a rerun draws the same trials
    assert abs(first.mean() - 0.1) < 0.01
    other = in_holdout(ids, "v2", 0.1)
    assert abs((first & other).mean() - 0.01) < 0.005  # another version: an independent draw


def test_allocation_fills_capacities_with_the_best_positive_values_only():
    value = np.array([[0, 5.0, 1.0], [0, 4.0, 9.0], [0, 3.0, 8.0], [0, -1.0, -2.0]])
    config = PolicyConfig(PolicyConfig.parse_channels("email:0:2,call:0:1"))
    assert allocate(config, value).tolist() == [1, 2, 1, 0]  # call to the best; email to the next two; none < 0
    paused = PolicyConfig(PolicyConfig.parse_channels("email:0:0,call:0:0"))
    assert allocate(paused, value).tolist() == [0, 0, 0, 0]  # a capacity of 0 contacts nobody


def test_assignment_respects_capacities_holds_out_and_reruns_identically():
    trials = _trials(2_000)
    state = PolicyState.prior(CONFIG)
    first = assign(CONFIG, state, trials, version="v1", seed=3)
    again = assign(CONFIG, state, trials, version="v1", seed=3)
    pd.testing.assert_frame_equal(first, again)
    counts = first["channel"].value_counts()
    assert counts.get("email", 0) <= 200 and counts.get("call", 0) <= 10
    assert counts.get("email", 0) >= 180  # the holdout does not leave capacity unused
    held = first[first["holdout"]]
    assert len(held) and (held["channel"] == NONE).all() and (held["intended"] != NONE).all()
    assert 0.05 < first["holdout"].sum() / (first["intended"] != NONE).sum() < 0.15
    assert ((first["propensity"] > 0) & (first["propensity"] <= 1)).all()


def test_a_configured_channel_without_a_posterior_is_an_error():
    state = PolicyState.prior(PolicyConfig(PolicyConfig.parse_channels("email:0.5:200")))
    with pytest.raises(OutreachError, match=r"channel\(s\) \['call'\] are configured"):
        assign(CONFIG, state, _trials(10), version="v", seed=1)


def _outcomes(state: PolicyState, day: int, rng: np.random.Generator) -> pd.DataFrame:
    """A day of assignments whose outcomes follow a world where a call adds 1.5 to the log-odds of
    undecided large companies and nothing elsewhere, email adds 0.3 for every undecided trial."""
    trials = _trials(3_000, seed=day)
    frame = assign(CONFIG, state, trials, version=f"d{day}", seed=day).join(trials.drop(columns="instance_id"))
    p = 1 / (1 + np.exp(-frame["log_odds"]))
    undecided = 4 * p * (1 - p)
    large = frame["company_size_rank"] >= 4
    shift = np.where(frame["channel"] == "call", 1.5 * undecided * large, 0.0) + np.where(
        frame["channel"] == "email", 0.3 * undecided, 0.0)
    frame["converted"] = rng.random(len(frame)) < 1 / (1 + np.exp(-(frame["log_odds"] + shift)))
    return frame


def test_daily_updates_learn_where_a_channel_works_and_grow_certain():
    rng = np.random.default_rng(7)
    state = PolicyState.prior(CONFIG)
    for day in range(12):
        state = learn(CONFIG, state, _outcomes(state, day, rng), day=f"day{day}")
    assert state.batches == 12 and state.learned_days[-1] == "day11"
    call = state.posteriors["call"]
    large = TERMS.index("undecided_large")
    assert call.mean[large] > 0.5  # learned from outcomes alone, offset by the champion's log-odds
    assert call.precision[large, large] > CONFIG.prior_precision * 3  # and more certain than the prior
    # the policy now calls large companies more than the others
    final = assign(CONFIG, state, _trials(3_000, seed=99), version="final", seed=1).join(
        _trials(3_000, seed=99).drop(columns="instance_id"))
    called = final[final["intended"] == "call"]
    assert (called["company_size_rank"] >= 4).mean() > 0.6


def test_outcomes_of_a_day_are_learned_once():
    rng = np.random.default_rng(1)
    state = PolicyState.prior(CONFIG)
    outcomes = _outcomes(state, 0, rng)
    state = learn(CONFIG, state, outcomes, day="day0")
    with pytest.raises(OutreachError, match="already learned"):
        learn(CONFIG, state, outcomes, day="day0")
    outcomes.loc[0, "channel"] = "fax"
    with pytest.raises(OutreachError, match=r"channel\(s\) \['fax'\]"):
        learn(CONFIG, state, outcomes, day="day1")


def test_the_state_round_trips_through_json():
    rng = np.random.default_rng(2)
    state = learn(CONFIG, PolicyState.prior(CONFIG), _outcomes(PolicyState.prior(CONFIG), 0, rng), day="day0")
    back = PolicyState.from_json(state.to_json())
    for arm, posterior in state.posteriors.items():
        assert np.allclose(back.posteriors[arm].mean, posterior.mean)
        assert np.allclose(back.posteriors[arm].precision, posterior.precision)
    assert back.learned_days == ["day0"]


def test_the_holdout_estimate_covers_the_true_uplift():
    """Randomised within the trials a channel was chosen for: contacted - holdout is unbiased."""
    covered = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        n = 4_000
        holdout = rng.random(n) < 0.1
        base = rng.uniform(0.1, 0.5, n)
        converted = rng.random(n) < np.where(holdout, base, base + 0.08)
        frame = pd.DataFrame({"intended": "call", "channel": np.where(holdout, NONE, "call"), "holdout": holdout,
                              "converted": converted})
        row = uplift(frame).iloc[0]
        covered += row["uplift_low"] <= 0.08 <= row["uplift_high"]
        assert row["contacted"] + row["holdout"] == n
    assert covered >= 34  # a 95% interval: 38 of 40 expected


def test_another_policy_is_valued_off_policy_from_the_recorded_propensities():
    """Logged: large companies (who convert more anyway) were called 4x as often as small ones. The value of
    "call everyone" is then only recovered by weighting with the propensities; unweighted it is 10x too high."""
    rng = np.random.default_rng(5)
    n = 200_000
    large = rng.random(n) < 0.5
    p_call = np.where(large, 0.8, 0.2)
    called = rng.random(n) < p_call
    converted = rng.random(n) < np.where(large, 0.4, 0.1) + 0.1 * called
    config = PolicyConfig(PolicyConfig.parse_channels("call:20:1000000"), conversion_value=250.0)
    logged = pd.DataFrame({"channel": np.where(called, "call", NONE), "converted": converted,
                           "propensity": np.where(called, p_call, 1 - p_call)})
    everyone = np.full(n, "call", dtype=object)
    estimate = off_policy_value(config, logged, everyone)
    assert abs(estimate["net_value"] / n - (250 * 0.1 - 20)) < 1.5  # true: 5 per trial
    assert estimate["matched"] == called.sum() and estimate["effective_size"] > 0.5 * called.sum()
    assert abs(estimate["coverage"] - 1) < 0.05  # every trial had a chance of a call
    unweighted = off_policy_value(config, logged.assign(propensity=1.0), everyone)
    assert unweighted["net_value"] / n > 40
    nobody = off_policy_value(config, logged, np.full(n, NONE, dtype=object))
    assert nobody["net_value"] == 0
    # a logged policy that never called small companies says nothing about calling them: coverage shows it
    never = pd.DataFrame({"channel": np.where(called & large, "call", NONE), "converted": converted,
                          "propensity": np.where(large, np.where(called, p_call, 1 - p_call), 1.0)})
    assert abs(off_policy_value(config, never, everyone)["coverage"] - 0.5) < 0.05
    with pytest.raises(OutreachError, match="propensity must be in"):
        off_policy_value(config, logged.assign(propensity=0.0), everyone)
    with pytest.raises(OutreachError, match=r"logged channel\(s\) \['fax'\] are not configured"):
        off_policy_value(config, logged.assign(channel=np.where(called, "fax", NONE)), everyone)


def test_one_thompson_draw_serves_the_whole_day():
    """Batched Thompson sampling: trials that look the same get the same channel on a day (a draw per trial
    would scatter them by its own noise)."""
    same = pd.DataFrame({"instance_id": [f"twin-{k}" for k in range(300)], "log_odds": -0.2,
                         "company_size_rank": 3.0, "mobile_share": 0.1})
    config = PolicyConfig(PolicyConfig.parse_channels("email:0:1000,chat:0:1000,call:0:1000"))
    for day in range(5):
        intended = assign(config, PolicyState.prior(config), same, version=f"d{day}", seed=day)["intended"]
        assert intended.nunique() == 1, intended.value_counts().to_dict()
