"""Benchmark daily scoring throughput: 1M rows through the serving pipeline versus raw inplace_predict.

A model in the seed's configuration (XGBoost, 200 trees of depth 3, monotone constraints, the
stored transform) is fitted on ~57,700 synthetic rows (tests/models/synthetic.py), then, in one run
and on the same 1M-row feature frame:
  * raw ``booster.inplace_predict`` on the prepared float32 matrix (the reference),
  * ``score_frame`` without reasons (schema check, stored transform, predict, calibration, bands,
    Arrow output table),
  * ``score_frame`` with the top-3 reasons: exact SHAP (``pred_contribs``) and ``approx_contribs``,
  * the ``score`` job end to end on a local folder (read Parquet, score with reasons, publish).
Best of ``--repeats``. Prints a markdown table (``--record`` also writes docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import churn.models  # noqa: E402,F401  (sets OMP_WAIT_POLICY before xgboost loads)


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="also write the rows into docs/benchmarks.md")
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from churn import jobs
    from churn.core.feature_config import load_feature_config
    from churn.core.settings import Settings
    from churn.core.warehouse import write_partition
    from churn.dev.synthetic import make_frame
    from churn.models.candidates import SEED_PARAMS, SEED_ROUNDS, Candidate, feature_directions, fit_candidate
    from churn.models.registry import Registry
    from churn.models.score import score_frame
    from churn.models.transform import feature_columns

    rng = np.random.default_rng(0)
    start = date(2025, 1, 1)
    train = pd.concat([make_frame(start + timedelta(days=d), 641, rng)[0] for d in range(90)], ignore_index=True)
    features = feature_columns(train)
    monotone = feature_directions(features, load_feature_config(Settings(_env_file=None)))
    model = fit_candidate(Candidate("xgb_seed", "xgboost", dict(SEED_PARAMS), rounds=SEED_ROUNDS), train, features,
                          monotone, seed=27)
    model.version, model.threshold = "bench", 0.3
    model.band_edges = [float(v) for v in np.quantile(model.predict_proba(train), np.linspace(0.1, 0.9, 9))]

    frame, _ = make_frame(date(2025, 6, 1), args.rows, rng, label=False)
    x = model.matrix(frame)
    n = len(frame)

    raw = best_of(args.repeats, lambda: model.booster.inplace_predict(x))
    plain = best_of(args.repeats, lambda: score_frame(model, frame, date(2025, 6, 8), reasons=False))
    # exact SHAP reasons are slow (~1 min per 1M rows): timed once, on a 200k-row slice
    part = frame.iloc[: min(n, 200_000)]
    reasons = best_of(1, lambda: score_frame(model, part, date(2025, 6, 8), reasons=True)) * n / len(part)
    approx = best_of(args.repeats, lambda: score_frame(model, frame, date(2025, 6, 8), reasons=True,
                                                       approx_reasons=True))

    workdir = Path(tempfile.mkdtemp(prefix="bench_scoring_"))
    try:
        settings = Settings(warehouse=str(workdir), s3_endpoint_url=None)
        registry = Registry(settings)
        version = "2025-06-08-bench000"
        model.version = version
        files = model.artifacts()
        registry.write_version(version, files, {"version": version, "model_files": sorted(files)})
        registry.promote(version, "benchmark")
        ds = date(2025, 6, 8)
        write_partition("instances_w1", ds, frame, settings)
        end_to_end = best_of(1, lambda: jobs.score(settings, [ds]))  # the daily job: verify champion, score, publish
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    columns = ["path (1M rows, XGBoost 200 trees depth 3)", "seconds", "rows/s", "vs raw inplace_predict"]
    rows = [
        ["raw booster.inplace_predict (prepared matrix)", raw],
        ["score_frame, no reasons", plain],
        ["score_frame, top-3 reasons, exact SHAP (pred_contribs; 200k rows, scaled)", reasons],
        ["score_frame, top-3 reasons, approx_contribs", approx],
        ["score job end to end (verify champion, read, score + exact reasons, publish)", end_to_end],
    ]
    table = [[name, f"{secs:.2f}", f"{n / secs:,.0f}", f"{raw / secs:.2f}x"] for name, secs in rows]
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))
    for row in table:
        print("| " + " | ".join(row) + " |")
    if args.record:
        from bench.report import record

        for row in table:
            record("Daily scoring", columns, row, key=row[0])


if __name__ == "__main__":
    main()
