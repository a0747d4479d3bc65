"""The served model: fitted transform + estimator (XGBoost booster or logistic regression) + calibration.

Everything here is plain data (JSON, XGBoost UBJSON): no pickle is ever written or read. The same
``ChurnModel`` object produces the training evaluation's probabilities and the daily scores, so
training and serving cannot disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xgboost as xgb
from scipy.optimize import minimize
from scipy.special import expit

from churn.models.transform import FeatureTransform

XGB_FILE = "model.ubj"
LINEAR_FILE = "model_linear.json"
PIPELINE_FILE = "pipeline.json"
TRANSFORM_FILE = "transform.json"


@dataclass
class LogisticModel:
    """L2-regularised logistic regression; coefficients may be sign-bounded (features with a direction)."""

    coef: np.ndarray
    intercept: float
    l2: float = 1.0

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, l2: float, signs: list[int] | None = None) -> LogisticModel:
        """Minimise mean log-loss + l2/2n * |w|^2 with L-BFGS-B (deterministic; bounds give monotonicity)."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        n, k = x.shape
        sign = 2 * y - 1

        def objective(theta):
            w, b = theta[:k], theta[k]
            z = x @ w + b
            loss = np.logaddexp(0, -sign * z).sum() + 0.5 * l2 * w @ w
            g = -sign * expit(-sign * z)
            return loss / n, np.append(x.T @ g + l2 * w, g.sum()) / n

        prior = np.clip(y.mean(), 1e-6, 1 - 1e-6)
        theta0 = np.append(np.zeros(k), np.log(prior / (1 - prior)))
        limits = {1: (0.0, None), -1: (None, 0.0), 0: (None, None)}  # up: w >= 0, down: w <= 0
        bounds = [limits[signs[j] if signs else 0] for j in range(k)] + [(None, None)]
        result = minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                          options={"maxiter": 500, "ftol": 1e-10, "gtol": 1e-7})
        return cls(coef=result.x[:k].copy(), intercept=float(result.x[k]), l2=l2)

    def margin(self, x: np.ndarray) -> np.ndarray:
        return x.astype(np.float64) @ self.coef + self.intercept

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per-feature terms coef_j * x_j (x is centred, so relative to the average instance) + bias column."""
        terms = x.astype(np.float64) * self.coef
        return np.column_stack([terms, np.full(len(x), self.intercept)])

    def to_json(self, features: list[str]) -> bytes:
        return json.dumps({"features": features, "coef": self.coef.tolist(), "intercept": self.intercept,
                           "l2": self.l2}, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes, features: list[str]) -> LogisticModel:
        data = json.loads(raw)
        if data["features"] != features:
            raise ValueError("linear model coefficients do not match the transform's feature list")
        return cls(coef=np.asarray(data["coef"], dtype=np.float64), intercept=float(data["intercept"]), l2=data["l2"])


@dataclass
class ChurnModel:
    """transform -> estimator margin -> Platt calibration (a * margin + b) -> p_retained."""

    kind: str  # "xgboost" | "logistic"
    transform: FeatureTransform
    booster: xgb.Booster | None = None
    linear: LogisticModel | None = None
    calibration: dict | None = None  # {"a": float, "b": float} or None
    threshold: float = 0.5  # at_risk when p_retained < threshold (threshold objectives)
    band_edges: list[float] = field(default_factory=list)  # 9 increasing p_retained cut points
    version: str = ""
    objective: str = "f2"  # the decision rule it was trained for (setting threshold_objective at training)

    def at_risk(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(at_risk 0/1, risk_rank 1 = riskiest) of one day's trials: below the threshold, or — capacity
        objectives ``top:N`` / ``top:fraction`` — the N (or the fraction) riskiest of the day."""
        from churn.core.settings import parse_objective

        p = np.asarray(p, dtype=np.float64)
        order = np.argsort(p, kind="stable")
        rank = np.empty(len(p), dtype=np.int32)
        rank[order] = np.arange(1, len(p) + 1, dtype=np.int32)
        kind, value = parse_objective(self.objective)
        if kind == "top":
            flagged = rank <= int(value)
        elif kind == "share":
            flagged = rank <= int(np.ceil(value * len(p)))
        else:
            flagged = p < self.threshold
        return flagged.astype(np.int32), rank

    @property
    def features(self) -> list[str]:
        return self.transform.features

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        return self.transform.apply(frame)

    def raw_margin(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "xgboost":
            return self.booster.inplace_predict(x, predict_type="margin").astype(np.float64)
        return self.linear.margin(x)

    def margin(self, x: np.ndarray) -> np.ndarray:
        m = self.raw_margin(x)
        if self.calibration:
            m = self.calibration["a"] * m + self.calibration["b"]
        return m

    def predict_proba_matrix(self, x: np.ndarray) -> np.ndarray:
        return expit(self.margin(x))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """P(retained) for every row of a feature frame (schema checked, transform applied)."""
        return self.predict_proba_matrix(self.matrix(frame))

    def contributions(self, x: np.ndarray, approx: bool = False) -> np.ndarray:
        """(n, features + 1) log-odds contributions (last column: bias) that sum to the calibrated margin.

        XGBoost: exact TreeSHAP (``pred_contribs``), or with ``approx`` the much faster path
        attribution (Saabas, ``approx_contribs``), which also sums to the margin.
        """
        if self.kind == "xgboost":
            contribs = self.booster.predict(xgb.DMatrix(x, feature_names=self.features, nthread=2),
                                            pred_contribs=True, approx_contribs=approx)
            contribs = contribs.astype(np.float64)
        else:
            contribs = self.linear.contributions(x)
        if self.calibration:
            contribs = contribs * self.calibration["a"]
            contribs[:, -1] += self.calibration["b"]
        return contribs

    def risk_band(self, p: np.ndarray) -> np.ndarray:
        """1 = lowest p_retained decile of the training distribution (highest churn risk) ... 10."""
        return (np.searchsorted(np.asarray(self.band_edges), p, side="right") + 1).astype(np.int32)

    # ---------------------------------------------------------- persist
    def artifacts(self) -> dict[str, bytes]:
        """File name -> bytes of everything needed to rebuild this model (JSON / UBJSON only)."""
        files = {
            PIPELINE_FILE: json.dumps(self.pipeline_dict(), indent=1).encode(),
            TRANSFORM_FILE: json.dumps(self.transform.to_dict(), indent=1).encode(),
        }
        if self.kind == "xgboost":
            files[XGB_FILE] = bytes(self.booster.save_raw(raw_format="ubj"))
        else:
            files[LINEAR_FILE] = self.linear.to_json(self.features)
        return files

    def pipeline_dict(self) -> dict:
        return {
            "kind": self.kind, "version": self.version, "transform_file": TRANSFORM_FILE,
            "calibration": self.calibration, "threshold": self.threshold, "band_edges": self.band_edges,
            "objective": self.objective, "estimator_file": XGB_FILE if self.kind == "xgboost" else LINEAR_FILE,
        }

    @classmethod
    def from_artifacts(cls, files: dict[str, bytes]) -> ChurnModel:
        spec = json.loads(files[PIPELINE_FILE])
        transform = FeatureTransform.from_dict(json.loads(files[TRANSFORM_FILE]))
        model = cls(kind=spec["kind"], transform=transform, calibration=spec["calibration"],
                    threshold=float(spec["threshold"]), band_edges=list(spec["band_edges"]), version=spec["version"],
                    objective=spec.get("objective", "f2"))
        if model.kind == "xgboost":
            booster = xgb.Booster()
            booster.load_model(bytearray(files[XGB_FILE]))
            booster.set_param({"nthread": 2})
            if booster.num_features() != len(transform.features):
                raise ValueError(f"booster has {booster.num_features()} features, transform {len(transform.features)}")
            booster.feature_names = transform.features
            model.booster = booster
        elif model.kind == "logistic":
            model.linear = LogisticModel.from_json(files[LINEAR_FILE], transform.features)
        else:
            raise ValueError(f"unknown model kind {model.kind!r} in {PIPELINE_FILE}")
        return model
