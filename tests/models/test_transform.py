"""The fitted transform: stored once, applied unchanged; schema problems are errors, not silent fixes."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from churn.dev.synthetic import make_frame
from churn.models.transform import FeatureTransform, SchemaMismatch, feature_columns


@pytest.fixture(scope="module")
def frame():
    frame, _ = make_frame(date(2025, 3, 1), 400, np.random.default_rng(5))
    frame.loc[frame.index[:7], "hours_to_first_key_action"] = np.nan
    return frame


@pytest.mark.parametrize("mode", ["maxabs", "log_standard"])
def test_scoring_a_row_does_not_depend_on_the_batch(frame, mode):
    """The seed refitted its scaler on the scoring batch; here one row scores the same in any batch."""
    features = feature_columns(frame)
    transform = FeatureTransform.fit(frame, features, mode)
    whole = transform.apply(frame)
    rows = [3, 250, 0]
    assert np.array_equal(transform.apply(frame.iloc[rows]), whole[rows])
    assert np.array_equal(transform.apply(frame.iloc[::-1])[::-1], whole)


@pytest.mark.parametrize("mode", ["maxabs", "log_standard"])
def test_json_round_trip_gives_identical_matrix(frame, mode):
    transform = FeatureTransform.fit(frame, feature_columns(frame), mode)
    again = FeatureTransform.from_dict(json.loads(json.dumps(transform.to_dict())))
    assert np.array_equal(again.apply(frame), transform.apply(frame))


def test_imputes_training_medians_and_scales_by_training_max(frame):
    features = feature_columns(frame)
    transform = FeatureTransform.fit(frame, features, "maxabs")
    j = features.index("hours_to_first_key_action")
    median = np.nanmedian(frame["hours_to_first_key_action"].to_numpy())
    scale = max(np.nanmax(np.abs(frame["hours_to_first_key_action"].to_numpy())), abs(median))
    x = transform.apply(frame.iloc[:7])  # the rows with NaN
    np.testing.assert_allclose(x[:, j], np.float32(median / scale), rtol=1e-6)
    # a new batch with other values does not move the scale: the stored one is used
    bigger = frame.assign(number_of_issues=frame["number_of_issues"] * 10)
    k = features.index("number_of_issues")
    np.testing.assert_allclose(transform.apply(bigger)[:, k], transform.apply(frame)[:, k] * 10, rtol=1e-5)


def test_missing_extra_and_retyped_features_are_errors(frame):
    transform = FeatureTransform.fit(frame, feature_columns(frame), "maxabs")
    with pytest.raises(SchemaMismatch, match=r"missing feature\(s\) \['issues_viewed'\]"):
        transform.apply(frame.drop(columns="issues_viewed"))
    with pytest.raises(SchemaMismatch, match=r"unexpected feature\(s\) \['new_signal'\]"):
        transform.apply(frame.assign(new_signal=1))
    with pytest.raises(SchemaMismatch, match="'number_of_issues' is float64"):
        transform.apply(frame.assign(number_of_issues=frame["number_of_issues"].astype(float)))
    with pytest.raises(SchemaMismatch, match="'w1_activity_trend' is object"):
        transform.apply(frame.assign(w1_activity_trend=frame["w1_activity_trend"].astype(str)))


def test_column_order_of_the_input_does_not_matter(frame):
    transform = FeatureTransform.fit(frame, feature_columns(frame), "maxabs")
    shuffled = frame[list(reversed(frame.columns))]
    assert np.array_equal(transform.apply(shuffled), transform.apply(frame))


def test_non_numeric_feature_is_rejected_at_training():
    frame = pd.DataFrame({"instance_id": ["a"], "plan": ["pro"], "n": [1]})
    with pytest.raises(SchemaMismatch, match="'plan'"):
        FeatureTransform.fit(frame, feature_columns(frame))


def test_nullable_integer_missing_values_get_the_training_median(frame):
    features = feature_columns(frame)
    transform = FeatureTransform.fit(frame, features, "maxabs")
    nullable = frame.assign(number_of_issues=frame["number_of_issues"].astype("Int64"))
    nullable.loc[nullable.index[:3], "number_of_issues"] = pd.NA
    x = transform.apply(nullable)
    j = features.index("number_of_issues")
    expected = np.float32(np.median(frame["number_of_issues"]) / transform.scale[j])
    assert (x[:3, j] == expected).all()
    assert np.array_equal(x[3:], transform.apply(frame)[3:])
