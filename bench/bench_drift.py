"""Drift alerts on the simulator: false alarms on its stationary days, and how fast an event type that stops
arriving is caught, with the product's rule (``churn.models.monitor.drift_rows``, default settings) against, in the
same run, the rule before it accounted for sample size (PSI > CHURN_MONITORING_PSI_ALERT alone).

Reads a warehouse the simulator filled and the DAGs scored (by default the one `make demo` leaves): every
scored day's features and the reference profile of the model that scored it. The injected change: from one
day on, an event type stops arriving, so its count feature is 0 for every trial; measured for every count
feature on every scored day. Writes docs/benchmarks.md (section "Drift alerts on the simulator").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import record  # noqa: E402
from churn.core.settings import Settings  # noqa: E402


def main(argv=None) -> int:
    from churn.core.feature_config import load_feature_config
    from churn.core.tables import INSTANCES_W1, PREDICTIONS
    from churn.core.warehouse import list_partitions, read_partition
    from churn.jobs.monitor import _ModelFacts
    from churn.models.monitor import SCORE_FEATURE, drift_rows

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    settings = Settings()
    facts = _ModelFacts(settings)
    counts = list(load_feature_config(settings).count_features)
    days = list_partitions(PREDICTIONS, settings)
    if not days:
        raise SystemExit(f"no scored day under {settings.warehouse}: run `make demo` first")
    old_days = new_days = 0
    caught_old = caught_new = injected = 0
    rows_per_day = []
    for day in days:
        current, scored = read_partition(INSTANCES_W1, day, settings), read_partition(PREDICTIONS, day, settings)
        version = max(scored["model_version"].dropna().unique())
        profile, metadata = facts.profile(version)
        rows_per_day.append(len(current))
        drift = drift_rows(current, scored, version, profile, metadata, settings)
        drift = drift[drift["feature"] != SCORE_FEATURE]
        old_days += bool((drift["psi"] > settings.monitoring_psi_alert).any())
        new_days += bool(drift["alert"].notna().any())
        for feature in counts:
            if feature not in current.columns or current[feature].max() == 0:
                continue
            changed = drift_rows(current.assign(**{feature: 0}), scored, version, profile, metadata, settings)
            row = changed[changed["feature"] == feature].iloc[0]
            injected += 1
            caught_old += bool(row["psi"] > settings.monitoring_psi_alert)
            caught_new += bool(row["alert"])
    trials = sorted(rows_per_day)[len(rows_per_day) // 2]
    record("Drift alerts on the simulator",
           ["scored days", "trials/day (median)", "days with a false alarm per 100, PSI alone",
            "days with a false alarm per 100, PSI and chi-square p (goal ≤ 1)",
            "event type stops: caught on day 1, PSI alone", "caught on day 1, product rule", "changes injected"],
           [len(days), trials, f"{100 * old_days / len(days):.1f}", f"**{100 * new_days / len(days):.1f}**",
            f"{caught_old / max(injected, 1):.0%}", f"**{caught_new / max(injected, 1):.0%}**", injected],
           key=str(len(days)))
    print({"days": len(days), "old_per_100": 100 * old_days / len(days), "new_per_100": 100 * new_days / len(days),
           "caught_old": caught_old, "caught_new": caught_new, "injected": injected})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
