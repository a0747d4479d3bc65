"""Monitoring alerts: how often they fire on stationary days (false alarms) and how fast they catch a change.

The rules are the product's own (``churn.models.monitor.performance_alert`` and ``psi_alert`` with the default
settings); the days are drawn from a stationary process shaped like the demo's cohorts (about 150 scored
trials a day, about 23% converting, a calibrated model of AUC ~0.84). Measured in the same run: the rule
before it accounted for sample size (a realised AUC more than 0.05 below validation alerts, however few
outcomes a day has) and the rule with the AUC's 95% interval (it alerts when even the interval's upper end
is below the bar). Changes injected: the model stops ranking (its scores are shuffled from day 1), and an
event type stops arriving (its count feature is 0 for everyone from day 1). Writes docs/benchmarks.md
(section "Monitoring alerts").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import record  # noqa: E402
from churn.core.settings import Settings  # noqa: E402
from churn.models import evaluate  # noqa: E402
from churn.models.monitor import MIN_ROWS_FOR_AUC, performance_alert, psi_alert  # noqa: E402
from churn.models.profile import psi  # noqa: E402

INTERCEPT, SLOPE = -1.55, 1.75  # ~23% converting, AUC ~0.84


def draw_day(rng, per_day: float):
    n = rng.poisson(per_day)
    z = rng.normal(size=n)
    p = 1 / (1 + np.exp(-(INTERCEPT + SLOPE * z)))
    y = (rng.uniform(size=n) < p).astype(int)
    return y, p


def day_alert(y, p, validation_auc: float, settings: Settings, sized: bool) -> bool:
    if len(y) < MIN_ROWS_FOR_AUC or len(np.unique(y)) < 2:
        return False
    auc = evaluate.probability_metrics(y, p)["roc_auc"]
    counts = (int(y.sum()), int(len(y) - y.sum())) if sized else (None, None)
    return bool(performance_alert(auc, validation_auc, settings, *counts))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=2000, help="stationary days simulated")
    parser.add_argument("--per-day", type=float, default=150.0, help="mean scored trials with outcomes per day")
    parser.add_argument("--changes", type=int, default=300, help="injected changes of each kind")
    args = parser.parse_args(argv)
    settings = Settings(_env_file=None)
    rng = np.random.default_rng(7)
    y_val, p_val = draw_day(rng, 100_000)
    validation_auc = evaluate.probability_metrics(y_val, p_val)["roc_auc"]

    alarms = {False: 0, True: 0}
    for _ in range(args.days):
        y, p = draw_day(rng, args.per_day)
        for sized in (False, True):
            alarms[sized] += day_alert(y, p, validation_auc, settings, sized)

    def first_alert_day(change: str, sized: bool = True, horizon: int = 7) -> int | None:
        for day in range(1, horizon + 1):
            y, p = draw_day(rng, args.per_day)
            if change == "stops_ranking":
                if day_alert(y, rng.permutation(p), validation_auc, settings, sized):
                    return day
            else:  # an event type stops arriving: its count is 0 for every trial of the day
                reference = rng.poisson(4.0, size=20_000)
                if psi_alert(psi(reference, np.zeros(len(y))), settings):
                    return day
        return None

    detected = {}
    for change in ("stops_ranking", "event_type_stops"):
        days = [first_alert_day(change) for _ in range(args.changes)]
        detected[change] = (np.mean([d is not None and d <= 2 for d in days]),
                            np.mean([d is not None and d <= 1 for d in days]))
    stationary_psi = sum(bool(psi_alert(psi(rng.poisson(4.0, 20_000), rng.poisson(4.0, int(args.per_day))), settings))
                         for _ in range(args.days))
    row = [
        f"{args.per_day:.0f}", args.days, f"{validation_auc:.3f}",
        f"{100 * alarms[False] / args.days:.1f}", f"**{100 * alarms[True] / args.days:.2f}**",
        f"{100 * stationary_psi / args.days:.2f}",
        f"{100 * detected['stops_ranking'][1]:.0f}% / **{100 * detected['stops_ranking'][0]:.0f}%**",
        f"{100 * detected['event_type_stops'][1]:.0f}% / **{100 * detected['event_type_stops'][0]:.0f}%**",
    ]
    record("Monitoring alerts",
           ["trials/day", "stationary days", "validation AUC", "AUC alarms per 100 days, rule without interval",
            "AUC alarms per 100 days, rule with interval (goal ≤ 1)", "PSI alarms per 100 stationary days",
            "model stops ranking: caught day 1 / within 2 days", "event type stops: caught day 1 / within 2 days"],
           row, key=row[0])
    print(dict(zip(["per_day", "days", "validation_auc", "old_per_100", "new_per_100", "psi_per_100",
                    "stops_ranking", "event_stops"], row, strict=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
