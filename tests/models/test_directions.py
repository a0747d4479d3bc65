"""The configuration says which way an event type points; the models follow it instead of forcing every
count up. A product with a harmful event type (an error shown) is simulated: the model learns its
negative effect when it is declared ``down`` or left free, and cannot when it is forced ``up``."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from churn.core.feature_config import FeatureConfigError, load_feature_config
from churn.core.settings import DEFAULT_FEATURE_CONFIG
from churn.dev.synthetic import make_frame, true_logit
from churn.models.candidates import SEED_PARAMS, Candidate, feature_directions, fit_candidate
from churn.models.transform import feature_columns

HARM = 0.9  # true log-odds lost per log(1 + errors shown)


def _config(tmp_path, direction: str | None):
    entry = "{event_types: [error_shown], label: errors shown" + (f", direction: {direction}}}" if direction else "}")
    text = DEFAULT_FEATURE_CONFIG.read_text().replace("count_features:\n", f"count_features:\n  errors_shown: {entry}\n", 1)
    path = tmp_path / f"features_{direction}.yaml"
    path.write_text(text)
    return load_feature_config(path=path)


@pytest.fixture(scope="module")
def product_with_errors() -> pd.DataFrame:
    """Synthetic trials of a product that shows errors: errors come with low engagement and on their own,
    and each one lowers the odds of converting (the truth, not a feature)."""
    rng = np.random.default_rng(11)
    frames = []
    for d in range(40):
        frame, _ = make_frame(date(2026, 1, 1) + timedelta(days=d), 150, rng)
        errors = rng.poisson(1.5 * np.exp(-0.3 * np.log1p(frame["number_of_issues"]) + rng.normal(0, 0.7, len(frame))))
        frame.insert(len(frame.columns) - 1, "errors_shown", errors.astype(np.int64))
        logit = true_logit(frame) - HARM * np.log1p(frame["errors_shown"].to_numpy())
        frame["retained"] = (rng.uniform(size=len(frame)) < 1 / (1 + np.exp(-logit))).astype(np.int32)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def test_directions_and_labels_are_read_from_the_configuration(tmp_path):
    config = _config(tmp_path, "down")
    assert config.count_features["errors_shown"] == ["error_shown"]
    assert config.direction("errors_shown") == -1 and config.label("errors_shown") == "errors shown"
    assert config.direction("issues_completed") == 1  # the default product declares its engagement counts up
    assert _config(tmp_path, None).direction("errors_shown") == 0  # not marked: free
    assert config.direction("w1_events") == 0 and config.label("w1_active_days") == "active days"
    for bad, message in [("direction: sideways", "direction must be one of up, down, none"),
                         ("directon: down", "unknown key"), ("label: ''", "label must be a one-line text")]:
        path = tmp_path / "bad.yaml"
        path.write_text(DEFAULT_FEATURE_CONFIG.read_text().replace(
            "count_features:\n", f"count_features:\n  errors_shown: {{event_types: [error_shown], {bad}}}\n", 1))
        with pytest.raises(FeatureConfigError, match=message):
            load_feature_config(path=path)


@pytest.mark.parametrize("kind", ["xgboost", "logistic"])
def test_a_harmful_event_type_is_learned_as_harmful_unless_forced_up(tmp_path, product_with_errors, kind):
    frame = product_with_errors
    features = feature_columns(frame)
    candidate = (Candidate("xgb_seed", "xgboost", dict(SEED_PARAMS), rounds=150) if kind == "xgboost"
                 else Candidate("logistic", "logistic", {"l2": 1.0}))
    effect = {}
    for direction in ("down", None, "up"):
        directions = feature_directions(features, _config(tmp_path, direction))
        model = fit_candidate(candidate, frame, features, directions, seed=27)
        without, with_errors = frame.assign(errors_shown=0), frame.assign(errors_shown=6)
        effect[direction] = float(np.mean(model.predict_proba(with_errors) - model.predict_proba(without)))
    assert effect["down"] < -0.03 and effect[None] < -0.03, effect  # declared or free: learned as harmful
    assert effect["up"] >= -1e-9, effect  # forced up, the model cannot say so: why the declaration matters
