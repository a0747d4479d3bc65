"""The candidate models and how each is fitted: the seed's XGBoost, a tuned XGBoost, a logistic regression.

Tuning uses time-ordered folds over the training cohorts (expanding window: train on the older
chunks, validate on the next one), never a random split. Every XGBoost candidate carries monotone
constraints: more week-1 engagement can never lower p_retained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import log_loss, roc_auc_score

from churn.models.model import ChurnModel, LogisticModel
from churn.models.transform import FeatureTransform

NTHREAD = 2  # fixed so that a model is reproducible for a given seed and data
N_TIME_FOLDS = 3

# The seed's hyperparameters (XGBClassifier(learning_rate=0.1, n_estimators=200, max_depth=3, ...)).
SEED_PARAMS = {"eta": 0.1, "max_depth": 3, "min_child_weight": 6, "gamma": 0.0, "subsample": 0.5,
               "colsample_bytree": 1.0, "colsample_bylevel": 1.0, "scale_pos_weight": 1.0}
SEED_ROUNDS = 200

# A small grid for the tuned candidate; rounds come from early stopping on the time folds.
TUNING_GRID = [
    {"eta": 0.08, "max_depth": 3, "min_child_weight": 6, "subsample": 0.8, "colsample_bytree": 0.8, "lambda": 1.0},
    {"eta": 0.08, "max_depth": 2, "min_child_weight": 6, "subsample": 0.8, "colsample_bytree": 1.0, "lambda": 1.0},
    {"eta": 0.08, "max_depth": 4, "min_child_weight": 10, "subsample": 0.8, "colsample_bytree": 0.8, "lambda": 5.0},
    {"eta": 0.08, "max_depth": 5, "min_child_weight": 20, "subsample": 0.7, "colsample_bytree": 0.7, "lambda": 10.0},
    {"eta": 0.08, "max_depth": 3, "min_child_weight": 20, "subsample": 0.7, "colsample_bytree": 0.6, "lambda": 5.0,
     "alpha": 1.0},
]
MAX_ROUNDS = 800
EARLY_STOPPING = 40
LINEAR_L2_GRID = [0.1, 1.0, 10.0, 100.0]

# Features whose effect on p_retained is constrained to be non-decreasing: every configured event
# count (sql/features/feature_config.yaml) plus the days active. Team-size features (w1_*_users)
# stay free: at equal activity, more users means less engagement per user, and constraining them
# cost 0.004 validation AUC on the simulator; so do volume/mix/timing features (w1_events,
# mobile_usage, w1_activity_trend, hours_to_first_key_action).


@dataclass
class Candidate:
    name: str
    kind: str  # xgboost | logistic
    params: dict
    rounds: int = 0
    tuning: list | None = None  # per-config time-fold results

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "params": self.params, "rounds": self.rounds,
                "tuning": self.tuning}


def feature_directions(features: list[str], config) -> dict[str, int]:
    """{feature: +1 up / -1 down} for the features the configuration (or the built-ins) give a direction;
    the rest are free. A count that signals trouble (an error shown, a cancel click) is declared ``down``."""
    return {f: config.direction(f) for f in features if config.direction(f)}


def time_folds(dates: pd.Series, n_folds: int = N_TIME_FOLDS) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds over distinct dates: chunk k validates a model trained on chunks < k."""
    distinct = np.sort(pd.unique(dates))
    chunks = np.array_split(distinct, n_folds + 1)
    values = dates.to_numpy()
    folds = []
    for k in range(1, n_folds + 1):
        if len(chunks[k]) == 0:
            continue
        train = np.isin(values, np.concatenate(chunks[:k]))
        valid = np.isin(values, chunks[k])
        folds.append((np.flatnonzero(train), np.flatnonzero(valid)))
    return folds


def xgb_params(params: dict, features: list[str], directions: dict[str, int], seed: int) -> dict:
    out = {"objective": "binary:logistic", "eval_metric": "logloss", "tree_method": "hist", "nthread": NTHREAD,
           "seed": seed, "verbosity": 0}
    out.update(params)
    out["monotone_constraints"] = "(" + ",".join(str(directions.get(f, 0)) for f in features) + ")"
    return out


def fit_booster(x: np.ndarray, y: np.ndarray, features: list[str], params: dict, rounds: int) -> xgb.Booster:
    dtrain = xgb.DMatrix(x, label=y, feature_names=features, nthread=NTHREAD)
    return xgb.train(params, dtrain, num_boost_round=rounds)


def tune_xgboost(x, y, dates, features, directions, seed) -> Candidate:
    """Pick the grid config with the lowest mean time-fold log-loss; rounds = mean early-stopping round."""
    folds = time_folds(dates)
    results = []
    for config in TUNING_GRID:
        params = xgb_params(config, features, directions, seed)
        losses, rounds = [], []
        for train_idx, valid_idx in folds:
            dtrain = xgb.DMatrix(x[train_idx], label=y[train_idx], feature_names=features, nthread=NTHREAD)
            dvalid = xgb.DMatrix(x[valid_idx], label=y[valid_idx], feature_names=features, nthread=NTHREAD)
            booster = xgb.train(params, dtrain, num_boost_round=MAX_ROUNDS, evals=[(dvalid, "valid")],
                                early_stopping_rounds=EARLY_STOPPING, verbose_eval=False)
            losses.append(float(booster.best_score))
            rounds.append(int(booster.best_iteration) + 1)
        results.append({"params": config, "fold_log_loss": losses, "mean_log_loss": float(np.mean(losses)),
                        "rounds": int(round(float(np.mean(rounds))))})
    best = min(results, key=lambda r: r["mean_log_loss"])
    return Candidate("xgb_tuned", "xgboost", best["params"], rounds=max(best["rounds"], 10), tuning=results)


def tune_logistic(x, y, dates, signs) -> Candidate:
    folds = time_folds(dates)
    results = []
    for l2 in LINEAR_L2_GRID:
        losses = []
        for train_idx, valid_idx in folds:
            model = LogisticModel.fit(x[train_idx], y[train_idx], l2=l2, signs=signs)
            p = 1 / (1 + np.exp(-model.margin(x[valid_idx])))
            losses.append(float(log_loss(y[valid_idx], np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1])))
        results.append({"params": {"l2": l2}, "fold_log_loss": losses, "mean_log_loss": float(np.mean(losses))})
    best = min(results, key=lambda r: r["mean_log_loss"])
    return Candidate("logistic_log_counts", "logistic", best["params"], tuning=results)


def candidate_list(train: pd.DataFrame, features: list[str], directions: dict[str, int], seed: int) -> list[Candidate]:
    """The seed's configuration, a tuned XGBoost and a tuned logistic regression (tuned on ``train`` only)."""
    y = train["retained"].to_numpy().astype(int)
    dates = train["eval_start_date"]
    tree_x = FeatureTransform.fit(train, features, "maxabs").apply(train)
    lin_t = FeatureTransform.fit(train, features, "log_standard")
    lin_x = lin_t.apply(train)
    seed_candidate = Candidate("xgb_seed", "xgboost", dict(SEED_PARAMS), rounds=SEED_ROUNDS)
    tuned = tune_xgboost(tree_x, y, dates, features, directions, seed)
    linear = tune_logistic(lin_x, y, dates, [directions.get(f, 0) for f in features])
    return [seed_candidate, tuned, linear]


def fit_candidate(candidate: Candidate, frame: pd.DataFrame, features: list[str], directions: dict[str, int],
                  seed: int) -> ChurnModel:
    """Fit the transform and the estimator of a candidate on ``frame`` (uncalibrated, threshold 0.5)."""
    y = frame["retained"].to_numpy().astype(int)
    if candidate.kind == "xgboost":
        transform = FeatureTransform.fit(frame, features, "maxabs")
        x = transform.apply(frame)
        booster = fit_booster(x, y, features, xgb_params(candidate.params, features, directions, seed), candidate.rounds)
        return ChurnModel("xgboost", transform, booster=booster)
    transform = FeatureTransform.fit(frame, features, "log_standard")
    x = transform.apply(frame)
    linear = LogisticModel.fit(x, y, l2=candidate.params["l2"], signs=[directions.get(f, 0) for f in features])
    return ChurnModel("logistic", transform, linear=linear)


def score_summary(y: np.ndarray, p: np.ndarray) -> dict:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return {"log_loss": float(log_loss(y, p, labels=[0, 1])),
            "roc_auc": float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")}
