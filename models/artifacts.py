"""What a model version stores beside its model files: provenance, headline metrics, validation scores.

Pure helpers of the retrain; a version's metadata is built from them once and never recomputed downstream.
"""

from __future__ import annotations

import io
import platform
import subprocess

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churn.core.settings import PROJECT_ROOT
from churn.models.candidates import Candidate


def code_version() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             timeout=5, check=True)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def library_versions() -> dict:
    import matplotlib
    import scipy
    import sklearn
    import xgboost

    return {"python": platform.python_version(), "xgboost": xgboost.__version__, "numpy": np.__version__,
            "pandas": pd.__version__, "pyarrow": pa.__version__, "scikit-learn": sklearn.__version__,
            "scipy": scipy.__version__, "matplotlib": matplotlib.__version__}


def median(values: pd.Series) -> float | None:
    finite = pd.to_numeric(values, errors="coerce").dropna()
    return float(finite.median()) if len(finite) else None


HEADLINE = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "accuracy", "precision", "recall", "f1", "f2",
            "threshold", "flagged_share", "at_risk_precision", "at_risk_recall", "at_risk_f2",
            "top_decile_churn_lift", "rows", "label_rate")


def headline_metrics(metrics: dict) -> dict:
    return {k: metrics[k] for k in HEADLINE if k in metrics}


def date_range(frame: pd.DataFrame) -> dict:
    return {"min": frame["eval_start_date"].min().date().isoformat(),
            "max": frame["eval_start_date"].max().date().isoformat()}


def validation_scores_parquet(valid: pd.DataFrame, p_oot: np.ndarray, p_served: np.ndarray) -> bytes:
    table = pa.table({
        "instance_id": valid["instance_id"].astype(str).to_numpy(),
        "eval_start_date": pa.array(valid["eval_start_date"].dt.date, type=pa.date32()),
        "retained": valid["retained"].to_numpy().astype(np.int32),
        "p_out_of_time": p_oot.astype(np.float64),
        "p_served": p_served.astype(np.float64),
    })
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Candidate):
        return value.describe()
    raise TypeError(f"not JSON serialisable: {type(value)}")
