"""Benchmark the weekly retrain at the seed's scale (57,700 rows) and the model's quality against the truth.

Data: ``--source simulator`` (default) simulates raw data and builds instances_modeling with the
Spark job (cached in bench/out/retrain_<n>/ between runs); ``--source synthetic`` uses the test
generator (tests/models/synthetic.py), no Spark needed. In one run it measures:
  1. the whole retrain (all candidates, tuning, calibration, report, registry) — wall time,
  2. one pipeline XGBoost fit (transform fit + apply + train, the seed's configuration) versus raw
     ``xgboost.train`` with the same parameters on the same raw matrix (median of 3),
  3. the champion's out-of-time validation AUC / log-loss next to the truth's AUC on the same rows.
Prints a markdown table (``--record`` also writes it into docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import churn.models  # noqa: E402,F401  (sets OMP_WAIT_POLICY before xgboost loads)

SEED_ROWS = 57_700


def prepare(source: str, rows: int, window: int, workdir: Path):
    """Publish ``window`` days of instances_modeling with ~rows rows; return (settings, run_date, truth or None)."""
    import pandas as pd
    import pyarrow.parquet as pq

    from churn.core import storage
    from churn.core.settings import Settings, join

    per_day = -(-rows // window)
    root = workdir / f"{source}_{per_day}x{window}"
    settings = Settings(warehouse=str(root), s3_endpoint_url=None, training_window_days=window)
    run_date = date(2025, 9, 1)
    ready = root / "READY"
    if source == "synthetic":
        if not ready.exists():
            from churn.dev.synthetic import write_modeling

            shutil.rmtree(root, ignore_errors=True)
            data = write_modeling(settings, run_date, per_day)
            data[["instance_id", "true_p"]].to_parquet(root / "truth.parquet")
            ready.touch()
        truth = pd.read_parquet(root / "truth.parquet").rename(columns={"true_p": "p_true"})
        return settings, run_date, truth
    if not ready.exists():
        from churn import jobs
        from churn.dev.simulator import simulate

        shutil.rmtree(root, ignore_errors=True)
        label = settings.label_window_days
        start = run_date - timedelta(days=window + label)
        # cohorts start in [start, run_date - label) -> instances_modeling dt in [run_date - window, run_date)
        simulate(start, window + label, per_day, settings.seed, settings, progress=False)
        jobs.build_features(settings, run_date - timedelta(days=window), run_date - timedelta(days=1),
                            tables=("instances_modeling",))
        ready.touch()
    raw = storage.read_bytes(join(settings.truth_path, "part-00000.parquet"), settings)
    truth = pq.read_table(io.BytesIO(raw)).to_pandas()[["instance_id", "p_convert"]]
    return settings, run_date, truth.rename(columns={"p_convert": "p_true"})


def fit_times(settings, run_date, repeats: int = 3) -> tuple[float, float, int, int]:
    """Median seconds of one pipeline XGBoost fit and of raw xgboost.train on the same rows."""
    import numpy as np
    import xgboost as xgb

    from churn.core.feature_config import load_feature_config
    from churn.models.candidates import (
        SEED_PARAMS,
        SEED_ROUNDS,
        Candidate,
        feature_directions,
        fit_candidate,
        xgb_params,
    )
    from churn.models.train import load_window
    from churn.models.transform import feature_columns

    frame, _ = load_window(run_date, settings)
    features = feature_columns(frame)
    monotone = feature_directions(features, load_feature_config(settings))
    candidate = Candidate("xgb_seed", "xgboost", dict(SEED_PARAMS), rounds=SEED_ROUNDS)
    params = xgb_params(SEED_PARAMS, features, monotone, settings.seed)
    x_raw = np.column_stack([frame[f].to_numpy(dtype=np.float32) for f in features])
    y = frame["retained"].to_numpy()
    pipeline, raw = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        fit_candidate(candidate, frame, features, monotone, settings.seed)
        pipeline.append(time.perf_counter() - started)
        started = time.perf_counter()
        xgb.train(params, xgb.DMatrix(x_raw, label=y, nthread=params["nthread"]), num_boost_round=SEED_ROUNDS)
        raw.append(time.perf_counter() - started)
    return statistics.median(pipeline), statistics.median(raw), len(frame), len(features)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=["simulator", "synthetic"], default="simulator")
    parser.add_argument("--rows", type=int, default=SEED_ROWS)
    parser.add_argument("--window", type=int, default=90)
    parser.add_argument("--workdir", default=str(ROOT / "bench" / "out" / "retrain"))
    parser.add_argument("--record", action="store_true", help="also write the row into docs/benchmarks.md")
    args = parser.parse_args()

    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from churn import jobs
    from churn.models.registry import Registry

    started = time.perf_counter()
    settings, run_date, truth = prepare(args.source, args.rows, args.window, Path(args.workdir))
    print(f"data ready in {time.perf_counter() - started:.1f}s ({args.source})", flush=True)

    shutil.rmtree(settings.models_path, ignore_errors=True)  # a fresh registry: no reuse of a version
    started = time.perf_counter()
    result = jobs.retrain(settings, run_date).as_dict()
    whole = time.perf_counter() - started
    pipeline, raw, rows, n_features = fit_times(settings, run_date)

    registry = Registry(settings)
    scores = pd.read_parquet(io.BytesIO(registry.read_artifact(result["version"], "validation_scores.parquet")))
    joined = scores.merge(truth, on="instance_id", how="inner")
    truth_auc = roc_auc_score(joined["retained"], joined["p_true"])
    model_auc, model_ll = result["metrics"]["roc_auc"], result["metrics"]["log_loss"]

    columns = ["data", "rows x features", "whole retrain (s)", "pipeline XGB fit (s)", "raw xgb.train (s)",
               "pipeline / raw", "selected", "OOT AUC", "OOT log-loss", "truth AUC", "AUC gap"]
    row = [args.source, f"{rows} x {n_features}", f"{whole:.1f}", f"{pipeline:.2f}", f"{raw:.2f}",
           f"{pipeline / raw:.2f}x", result["model"], f"{model_auc:.4f}", f"{model_ll:.4f}", f"{truth_auc:.4f}",
           f"{truth_auc - model_auc:+.4f}"]
    print()
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))
    print("| " + " | ".join(row) + " |")
    print(f"\nvalidation rows {len(scores)} (truth joined {len(joined)}); report: {result['report']}")
    if args.record:
        from bench.report import record

        record("Weekly retrain", columns, row, key=args.source)


if __name__ == "__main__":
    main()
