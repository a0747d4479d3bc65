"""Synthetic feature frames with a known truth, in the schema of instances_modeling / instances_w1.

A latent engagement level drives the week-1 counts; the probability of being retained is a known
function of the observable features (so a good model can reach the truth's AUC), and the label is
drawn from it. ``true_p`` is returned alongside, never written as a feature.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from churn.core.feature_config import FeatureConfig, load_feature_config
from churn.core.settings import DEFAULT_FEATURE_CONFIG, Settings
from churn.core.tables import table
from churn.core.warehouse import write_partition, write_partitions

COUNT_MEANS = {  # mean count at average engagement, and how strongly engagement scales it
    "number_of_projects": (0.6, 0.5), "number_of_issues": (5.0, 0.8), "number_of_invites": (0.8, 0.6),
    "watchers_added": (0.3, 0.3), "issues_updated": (4.0, 0.7), "issues_commented": (2.0, 0.6),
    "issues_assigned": (2.0, 0.5), "at_mentions": (0.5, 0.5), "issues_viewed": (10.0, 0.6),
    "issues_completed": (1.5, 0.7), "sprint_started": (0.3, 0.8), "sprint_finished": (0.15, 0.8),
}


def true_logit(f: pd.DataFrame) -> np.ndarray:
    """The generator's truth: log-odds of retained from observable week-1 features.

    Non-linear on purpose (a step in active days, saturation, an interaction), as real engagement
    effects are; monotone non-decreasing in every count.
    """
    invites = np.minimum(f["number_of_invites"], 4)
    return (
        -2.8
        + 0.5 * np.log1p(f["number_of_issues"])
        + 0.35 * invites
        + 0.9 * (f["w1_active_days"] >= 3)
        + 0.5 * ((f["sprint_started"] > 0) & (f["number_of_invites"] > 0))
        + 0.3 * np.log1p(f["issues_completed"])
        + 0.3 * f["w1_activity_trend"]
        - 0.005 * f["hours_to_first_key_action"]
    ).to_numpy()


def make_frame(eval_start: date, n: int, rng: np.random.Generator, label: bool = True,
               id_prefix: str = "i", config: FeatureConfig | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` instances starting their evaluation on ``eval_start`` (columns in table order), and true p.

    ``config``: the feature configuration whose columns to generate (default: the packaged one)."""
    config = config or load_feature_config(path=DEFAULT_FEATURE_CONFIG)
    z = rng.normal(size=n)
    team = 1 + rng.poisson(2.0, size=n)
    f = {"instance_id": [f"{id_prefix}{eval_start:%Y%m%d}-{k:05d}" for k in range(n)],
         "eval_start_date": [eval_start] * n}
    for name in config.count_features:
        mean, slope = COUNT_MEANS.get(name, (1.0, 0.5))
        scale = team / 3.0 if name == "number_of_invites" else 1.0
        f[name] = rng.poisson(mean * scale * np.exp(slope * z)).astype(np.int64)
    sig = 1 / (1 + np.exp(-z))
    active_users = np.minimum(team, 1 + rng.binomial(team, sig)).astype(np.int64)
    active_days = (1 + rng.binomial(6, 1 / (1 + np.exp(-0.9 * z)))).astype(np.int64)
    f["w1_active_users"] = active_users
    f["w1_agg_active_users"] = (active_users * active_days * rng.uniform(0.5, 1.0, size=n)).astype(np.int64) + 1
    f["w1_max_active_users"] = active_users
    f["mobile_usage"] = rng.poisson(1.0, size=n).astype(np.int64)
    counts = sum(f[c] for c in COUNT_MEANS if c in f)
    f["w1_events"] = (counts + rng.poisson(5, size=n)).astype(np.int64)
    f["w1_active_days"] = active_days
    f["w1_activity_trend"] = np.clip(rng.normal(0.15 * z, 0.3), -1, 1)
    f["hours_to_first_key_action"] = np.minimum(168.0, rng.exponential(30 * np.exp(-0.5 * z)))
    f["eval_start_weekday"] = np.full(n, eval_start.isoweekday(), dtype=np.int32)
    for attribute in config.attribute_features:  # ranks, some unknown (NULL)
        ranks = rng.integers(1, len(attribute.ranks) + 1, size=n).astype(np.float64)
        f[attribute.name] = np.where(rng.uniform(size=n) < 0.05, np.nan, ranks)
    frame = pd.DataFrame(f)
    # every feature the configuration declares, in table order, and each value inside its spec's bounds
    specs = config.specs()
    assert [c for c in frame.columns if c in specs] == list(specs), "the generator no longer covers every FeatureSpec"
    p = 1 / (1 + np.exp(-true_logit(frame)))
    if label:
        frame.insert(2, "retained", (rng.uniform(size=n) < p).astype(np.int32))
    return frame, p


def write_modeling(settings: Settings, run_date: date, per_day: int, seed: int = 1, days: int | None = None,
                   shuffle_labels: bool = False, invert_labels: bool = False) -> pd.DataFrame:
    """Publish the instances_modeling partitions a retrain on ``run_date`` reads (one commit); returns all rows +
    true_p. ``invert_labels`` flips ``retained`` (a label definition flipped upstream)."""
    rng = np.random.default_rng(seed)
    days = days or settings.training_window_days
    frames, published = [], {}
    config = load_feature_config(settings)
    for k in range(days, 0, -1):
        dt = run_date - timedelta(days=k)
        frame, p = make_frame(dt - timedelta(days=settings.label_window_days), per_day, rng, config=config)
        if shuffle_labels:
            frame["retained"] = rng.permutation(frame["retained"].to_numpy())
        if invert_labels:
            frame["retained"] = (1 - frame["retained"]).astype(np.int32)
        published[dt] = frame
        frames.append(frame.assign(true_p=p))
    write_partitions(table("instances_modeling"), published, settings)
    return pd.concat(frames, ignore_index=True)


def write_w1(settings: Settings, ds: date, per_day: int, seed: int = 2) -> pd.DataFrame:
    """Publish instances_w1 dt=ds (cohort eval_start_date = ds - first_week_days)."""
    rng = np.random.default_rng(seed)
    frame, _ = make_frame(ds - timedelta(days=settings.first_week_days), per_day, rng, label=False, id_prefix="w",
                          config=load_feature_config(settings))
    write_partition(table("instances_w1"), ds, frame, settings)
    return frame
