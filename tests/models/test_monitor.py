"""Monitoring: realised performance once outcomes arrive (scored or not), drift of each scored day
against the reference profile stored at training time, and the alert rules."""

from __future__ import annotations

import shutil
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from churn.core.settings import Settings
from churn.core.tables import INSTANCES_MODELING, INSTANCES_W1, PREDICTIONS, table
from churn.core.warehouse import list_partitions, read_partition, write_partition
from churn.dev.synthetic import write_w1
from churn.jobs import Skipped, monitor, score
from churn.models.monitor import SCORE_FEATURE, performance_alert, psi_alert
from churn.models.profile import build_profile, drift_of, psi, reference_group
from churn.models.registry import Registry
from tests.models.conftest import RUN_DATE

SCORED_DT = RUN_DATE + timedelta(days=1)  # the cohort's first week ended: scored that day
OUTCOME_DT = SCORED_DT + timedelta(days=30 - 7)  # its outcomes became known label_window days after start


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    reference = rng.poisson(5, 20_000).astype(float)
    assert psi(reference, rng.poisson(5, 5_000).astype(float)) < 0.02
    assert psi(reference, rng.poisson(9, 5_000).astype(float)) > 0.25
    with_nulls = rng.poisson(5, 5_000).astype(float)
    with_nulls[:2_000] = np.nan  # nulls are a bin of their own: 40% nulls is a shift
    assert psi(reference, with_nulls) > 0.25
    assert np.isnan(psi(reference, np.array([])))


def test_a_stored_profile_gives_the_psi_of_the_raw_reference():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.poisson(5, 4_000).astype(float), "eval_start_weekday": 1})
    current = pd.DataFrame({"x": rng.poisson(6, 500).astype(float), "eval_start_weekday": 1})
    group = reference_group(build_profile(frame, ["x"]), "x", current)
    assert drift_of(group, current["x"]) == pytest.approx(psi(frame["x"], current["x"]))


def test_drift_compares_a_cohort_with_training_cohorts_of_the_same_weekday():
    """Activity differs by the weekday a trial starts on; a Saturday cohort like past Saturdays is no drift."""
    rng = np.random.default_rng(2)
    weekdays = np.repeat(np.arange(1, 8), 600)
    weekend = weekdays >= 6
    training = pd.DataFrame({"eval_start_weekday": weekdays,
                             "w1_active_days": np.where(weekend, rng.poisson(2, len(weekdays)), rng.poisson(5, len(weekdays)))})
    saturday = pd.DataFrame({"eval_start_weekday": 6, "w1_active_days": rng.poisson(2, 400)})
    profile = build_profile(training, ["w1_active_days", "eval_start_weekday"])
    assert "eval_start_weekday" not in profile["features"]  # constant within a cohort: exempt
    same_weekday = drift_of(reference_group(profile, "w1_active_days", saturday), saturday["w1_active_days"])
    all_weekdays = drift_of(profile["features"]["w1_active_days"]["all"], saturday["w1_active_days"])
    settings = Settings(_env_file=None)
    assert same_weekday < 0.1 < settings.monitoring_psi_alert < all_weekdays  # without the rule: a false alarm


def test_the_auc_alert_rules():
    settings = Settings(_env_file=None)  # floor 0.60, drop alert 0.05
    assert "below the validation AUC 0.850" in performance_alert(0.75, 0.85, settings)  # above the floor, far below
    assert "floor" not in performance_alert(0.75, 0.85, settings)
    assert performance_alert(0.82, 0.85, settings) == ""  # within the tolerated drop
    assert "is below the floor 0.6" in performance_alert(0.55, None, settings)
    assert performance_alert(float("nan"), 0.85, settings) == ""  # too few outcomes to judge


def _outcomes_for(settings, scored, shuffle: bool, rng) -> None:
    """instances_modeling dt=OUTCOME_DT: the scored cohort's labels (drawn from p_retained) plus unscored rows."""
    features = read_partition(INSTANCES_W1, SCORED_DT, settings).drop(columns="dt").set_index("instance_id")
    frame = features.loc[scored["instance_id"]].reset_index()
    labels = (rng.uniform(size=len(scored)) < scored["p_retained"].to_numpy()).astype(np.int32)
    frame["retained"] = rng.permutation(labels) if shuffle else labels
    extra = frame.head(20).assign(instance_id=lambda f: "never-scored-" + f["instance_id"])
    write_partition(INSTANCES_MODELING, OUTCOME_DT, pd.concat([frame, extra], ignore_index=True),
                    settings)


def test_realised_performance_joins_outcomes_to_the_predictions_made_a_week_in(local_copy):
    settings, rng = local_copy.settings, np.random.default_rng(3)
    write_w1(settings, SCORED_DT, 400)
    score(settings, [SCORED_DT])
    scored = read_partition(PREDICTIONS, SCORED_DT, settings)
    _outcomes_for(settings, scored, shuffle=False, rng=rng)

    result = monitor(settings, performance_days=[OUTCOME_DT])
    row = read_partition(table("model_performance"), OUTCOME_DT, settings).iloc[0]
    labels = read_partition(INSTANCES_MODELING, OUTCOME_DT, settings)
    joined = labels.merge(scored, on="instance_id")
    assert row["model_version"] == local_copy.result["version"]
    assert (row["labelled_rows"], row["scored_rows"]) == (420, 400)
    assert str(row["scored_dt"]) == SCORED_DT.isoformat()
    assert row["roc_auc"] == pytest.approx(roc_auc_score(joined["retained"], joined["p_retained"]))
    assert row["log_loss"] == pytest.approx(log_loss(joined["retained"], joined["p_retained"]))
    decided = joined["prediction_retained"] == 1
    assert row["precision"] == pytest.approx((joined["retained"][decided] == 1).mean())
    assert row["validation_roc_auc"] == pytest.approx(local_copy.result["metrics"]["roc_auc"])
    assert row["alert"] is None and result.performance[0]["scored_rows"] == 400
    assert result.drift == [] and result.alerts == []


def test_a_model_that_stopped_ranking_raises_an_alert(local_copy, caplog):
    settings = local_copy.settings
    write_w1(settings, SCORED_DT, 400)
    score(settings, [SCORED_DT])
    scored = read_partition(PREDICTIONS, SCORED_DT, settings)
    _outcomes_for(settings, scored, shuffle=True, rng=np.random.default_rng(4))
    with caplog.at_level("ERROR", logger="churn.alerts"):
        result = monitor(settings, performance_days=[OUTCOME_DT])
    row = read_partition(table("model_performance"), OUTCOME_DT, settings).iloc[0]
    assert row["roc_auc"] < settings.promotion_auc_floor
    # 400 outcomes: the interval (about ±0.06) is stated, and even its upper end is far below validation
    assert "95% interval" in row["alert"] and "below the validation AUC" in row["alert"]
    assert row["roc_auc_low"] < row["roc_auc"] < row["roc_auc_high"] < row["validation_roc_auc"] - 0.05
    assert any("realised AUC" in a for a in result.alerts)
    assert "realised AUC" in caplog.text  # the alert was raised, not only stored


def test_drift_uses_the_stored_profile_of_the_scoring_model_and_flags_a_shift(local_copy):
    settings = local_copy.settings
    registry = Registry(settings)
    champion = registry.alias("champion")["version"]
    write_w1(settings, SCORED_DT, 1_000)
    score(settings, [SCORED_DT])
    # the training window is not read any more: the profile stored with the model is enough
    shutil.rmtree(INSTANCES_MODELING.location(settings))
    result = monitor(settings, drift_days=[SCORED_DT])
    drift = read_partition(table("feature_drift"), SCORED_DT, settings).set_index("feature")
    features = [f["name"] for f in registry.metadata(champion)["features"]]
    assert list(drift.index) == [f for f in features if f != "eval_start_weekday"] + [SCORE_FEATURE]
    assert set(drift["model_version"]) == {champion}
    assert (drift["psi"] < 0.1).all(), drift["psi"].sort_values().tail(3)
    assert drift["alert"].isna().all() and result.alerts == [] and result.performance == []

    shifted = read_partition(INSTANCES_W1, SCORED_DT, settings).drop(columns="dt")
    shifted["number_of_issues"] = shifted["number_of_issues"] * 4
    write_partition(INSTANCES_W1, SCORED_DT, shifted, settings)
    result = monitor(settings, drift_days=[SCORED_DT])
    drift = read_partition(table("feature_drift"), SCORED_DT, settings).set_index("feature")
    assert drift.loc["number_of_issues", "psi"] > settings.monitoring_psi_alert
    assert drift.loc["number_of_issues", "alert"].startswith("PSI")
    assert any("number_of_issues" in a for a in result.alerts)


def test_performance_needs_neither_scoring_nor_a_champion(empty_local):
    """Outcomes of a cohort that was never scored still get their row, even before any model exists."""
    settings = empty_local
    outcomes = write_w1(settings, SCORED_DT, 50).assign(retained=np.int32(1))
    write_partition(INSTANCES_MODELING, OUTCOME_DT, outcomes, settings)
    result = monitor(settings, performance_days=[OUTCOME_DT], drift_days=[OUTCOME_DT])
    row = read_partition(table("model_performance"), OUTCOME_DT, settings).iloc[0]
    assert (row["labelled_rows"], row["scored_rows"]) == (50, 0)
    assert row["model_version"] is None and np.isnan(row["roc_auc"]) and np.isnan(row["precision"])
    assert result.performance[0]["roc_auc"] is None and result.alerts == []
    assert result.skipped == [f"drift of {OUTCOME_DT}: no predictions (instances_w1_scored dt={OUTCOME_DT} is not published)"]
    assert list_partitions(table("feature_drift"), settings) == []


def test_a_day_without_data_is_skipped_with_the_reason(local_copy):
    day = SCORED_DT + timedelta(days=400)
    with pytest.raises(Skipped, match=f"no outcomes \\(instances_modeling dt={day}.*no predictions"):
        monitor(local_copy.settings, [day], [day])
    with pytest.raises(Skipped, match="no day to monitor"):
        monitor(local_copy.settings, [], [])


def test_a_monitoring_run_reads_each_model_versions_facts_once(local_copy, monkeypatch):
    settings = local_copy.settings
    days = [SCORED_DT + timedelta(days=n) for n in range(3)]
    for n, day in enumerate(days):
        write_w1(settings, day, 300, seed=n)
    score(settings, days)
    reads = []
    original = Registry.reference_profile
    monkeypatch.setattr(Registry, "reference_profile", lambda self, *a, **k: reads.append(a[0]) or original(self, *a, **k))
    assert len(monitor(settings, drift_days=days).drift) == 3
    assert reads == [local_copy.result["version"]]


def test_predictions_of_rebuilt_features_are_reported_stale(local_copy):
    settings = local_copy.settings
    write_w1(settings, SCORED_DT, 200)
    score(settings, [SCORED_DT])
    assert not [a for a in monitor(settings, drift_days=[SCORED_DT]).alerts if "stale" in a]
    features = read_partition(INSTANCES_W1, SCORED_DT, settings)
    write_partition(INSTANCES_W1, SCORED_DT, features, settings)  # a rebuild after scoring
    stale = [a for a in monitor(settings, drift_days=[SCORED_DT]).alerts if "stale" in a]
    assert len(stale) == 1 and f"churn score --ds {SCORED_DT}" in stale[0]
    score(settings, [SCORED_DT])  # rescoring clears it
    assert not [a for a in monitor(settings, drift_days=[SCORED_DT]).alerts if "stale" in a]


def test_the_auc_alert_accounts_for_how_few_outcomes_a_day_has():
    from churn.core.settings import Settings
    from churn.models.evaluate import auc_interval
    from churn.models.monitor import performance_alert

    settings = Settings(_env_file=None)  # alert when more than 0.05 below validation
    low, high = auc_interval(0.74, 35, 115)  # a demo-sized day: 150 outcomes
    assert low < 0.74 < high and high - low > 0.12
    assert performance_alert(0.74, 0.82, settings) != ""  # the point estimate alone: an alarm
    assert performance_alert(0.74, 0.82, settings, 35, 115) == ""  # within what one day can tell
    loud = performance_alert(0.74, 0.82, settings, 2000, 6000)  # the same AUC on 8,000 outcomes is evidence
    assert loud.startswith("realised AUC 0.740 (95% interval 0.72") and "8000 outcomes" in loud
    assert performance_alert(0.50, 0.82, settings, 35, 115) != ""  # a model that stops ranking: caught at once


def test_a_large_psi_from_few_trials_is_not_an_alert_but_the_same_shift_on_many_is():
    """PSI ignores sample size: an empty 2% bin alone adds ~0.1. The alert also asks for a chi-square p-value
    below CHURN_MONITORING_DRIFT_P_VALUE, so the same shares alert on 2,000 trials but not on 20."""
    from churn.models.profile import homogeneity_p_value, psi_from_shares

    settings = Settings(_env_file=None)
    reference, day = [0.5, 0.3, 0.18, 0.02, 0.0], [0.7, 0.15, 0.15, 0.0, 0.0]
    value = psi_from_shares(reference, day)
    assert value > settings.monitoring_psi_alert  # the rule before: an alert
    few = homogeneity_p_value(reference, 5_000, day, 20)
    many = homogeneity_p_value(reference, 5_000, day, 2_000)
    assert few > 0.01 and many < 1e-10
    assert psi_alert(value, settings, few) is None
    assert psi_alert(value, settings, many).startswith("PSI") and "p = " in psi_alert(value, settings, many)
    assert psi_alert(value, Settings(_env_file=None, monitoring_drift_p_value=1.0), few)  # 1 disables the test
