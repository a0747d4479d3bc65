"""What `churn demo` ends with: the champion against the best AUC the simulator allows, the riskiest trials and why,
drift and realised performance, outreach's value, and a query that works; read from the warehouse and registry."""

from __future__ import annotations

import io
from datetime import date

from churn.core.tables import FEATURE_DRIFT, MODEL_PERFORMANCE, OUTREACH_ASSIGNMENTS, PREDICTIONS
from churn.jobs.monitor import dashboard_path

QUERY_EXAMPLE = (
    "SELECT dt, count(*) AS trials, round(avg(p_retained), 3) AS mean_p_retained, "
    "sum(at_risk) AS flagged_at_risk FROM churn.instances_w1_scored "
    "GROUP BY dt ORDER BY dt DESC LIMIT 3"
)


def summarize(settings, today: date, top: int = 10) -> dict:
    """The numbers the demo ends with, read from the warehouse and the registry."""
    import pandas as pd
    import pyarrow.parquet as pq
    from sklearn.metrics import roc_auc_score

    from churn.core.warehouse import list_partitions, read_partition, read_partitions
    from churn.models.registry import Registry
    from churn.ops.query import run_query

    registry = Registry(settings)
    champion = registry.alias("champion")
    metadata = registry.metadata(champion["version"])
    validation = pq.read_table(
        io.BytesIO(registry.read_artifact(champion["version"], "validation_scores.parquet"))
    ).to_pandas()
    truth = pd.read_parquet(settings.truth_path, columns=["instance_id", "p_convert"])
    joined = validation.merge(truth, on="instance_id", how="inner")
    best_auc = float(roc_auc_score(joined["retained"], joined["p_convert"]))

    latest = list_partitions(PREDICTIONS, settings)[-1]
    scored = read_partition(PREDICTIONS, latest, settings)
    at_risk = scored.sort_values(["p_retained", "instance_id"]).head(top)
    query = run_query(QUERY_EXAMPLE, settings)
    all_drift = read_partitions(FEATURE_DRIFT, list_partitions(FEATURE_DRIFT, settings), settings)
    alerted = all_drift[all_drift["alert"].notna()]
    incident = {"days": sorted({str(d) for d in alerted["dt"]}),
                "features": sorted(set(alerted["feature"]))} if len(alerted) else None
    drift = all_drift[all_drift["dt"].astype(str) == latest.isoformat()]  # the latest day, from the read above
    drift = drift.sort_values(["psi", "feature"], ascending=[False, True]).head(3)
    performance = read_partitions(MODEL_PERFORMANCE, list_partitions(MODEL_PERFORMANCE, settings), settings)
    performance = performance[performance["scored_rows"] > 0]
    outreach = outreach_summary(settings)
    return {
        "outreach": outreach,
        "champion": champion["version"],
        "metrics": metadata.get("metrics", {}),
        "validation_rows": len(validation),
        "best_possible_auc": best_auc,
        "latest_dt": latest.isoformat(),
        "scored_latest": len(scored),
        "at_risk": at_risk,
        "report": registry.artifact_path(champion["version"], "report.html"),
        "dashboard": dashboard_path(settings),
        "query": query,
        "drift": drift,
        "incident": incident,
        "performance": performance,
    }


def outreach_summary(settings) -> dict:
    """Yesterday's assignments, the holdout's uplift per channel (every day learned so far), and the policy's
    exact net value on the assigned trials next to the best possible allocation's (from the simulator's truth)."""
    import numpy as np
    import pandas as pd

    from churn.core.warehouse import list_partitions, read_partition, read_partitions
    from churn.jobs.outreach import policy_config
    from churn.models.outreach import NONE, allocate
    from churn.models.outreach_effect import uplift_interval

    days = list_partitions(OUTREACH_ASSIGNMENTS, settings)
    if not days:
        return {}
    config = policy_config(settings)
    latest = read_partition(OUTREACH_ASSIGNMENTS, days[-1], settings)
    effect_days = list_partitions("outreach_effect", settings)
    effect = read_partitions("outreach_effect", effect_days, settings) if effect_days else pd.DataFrame()
    if len(effect):
        overall = effect[effect["segment"] == "all"]
        effect = overall.groupby("channel")[["contacted", "converted", "holdout", "holdout_converted"]].sum()
        effect[["uplift", "low", "high"]] = pd.DataFrame(  # pooled over the learned days
            [uplift_interval(*counts) for counts in effect.itertuples(index=False)], index=effect.index)
        effect = effect.reset_index()
    assignments = read_partitions(OUTREACH_ASSIGNMENTS, days, settings)
    truth = pd.read_parquet(settings.truth_path).set_index("instance_id")
    arms = config.arms
    closeness = None
    if all(f"p_{c}" in truth for c in arms[1:]):
        rows = truth.loc[assignments["instance_id"]]
        p = np.column_stack([rows["p_convert"].to_numpy(), *(rows[f"p_{c}"].to_numpy() for c in arms[1:])])
        costs = np.array([0.0, *(c.cost for c in config.channels)])
        gain = config.conversion_value * (p - p[:, :1]) - costs[None, :]
        given = np.array([arms.index(c) for c in assignments["channel"]])
        policy = best = 0.0
        for day in assignments["dt"].unique():
            mask = (assignments["dt"] == day).to_numpy()
            policy += gain[mask, given[mask]].sum()
            value = gain[mask].copy()
            value[:, 0] = 0
            best += value[np.arange(mask.sum()), allocate(config, value)].sum()
        closeness = {"policy": policy, "best": best, "days": len(days)}
    return {"latest_dt": days[-1].isoformat(), "latest": latest["channel"].value_counts().to_dict(),
            "holdout": int(latest["holdout"].sum()), "policy_version": latest["policy_version"].iloc[0],
            "effect": effect, "closeness": closeness, "none": NONE}


def print_outreach(outreach: dict) -> None:
    if not outreach:
        print("\noutreach: no day was assigned")
        return
    counts = ", ".join(f"{k} {v}" for k, v in sorted(outreach["latest"].items()) if k != outreach["none"])
    print(f"\n=== outreach assigned for {outreach['latest_dt']} (policy {outreach['policy_version']}) ===")
    print(f"contact: {counts or 'nobody'}; {outreach['latest'].get(outreach['none'], 0)} not contacted, of whom "
          f"{outreach['holdout']} in the holdout (chosen, kept uncontacted to measure)")
    effect = outreach["effect"]
    if len(effect):
        print("what the holdout says each channel is worth (contacted vs holdout conversion, learned days):")
        for row in effect.itertuples():
            print(f"  {row.channel:<6} {row.contacted:>6} contacted  uplift {row.uplift:+.3f} [{row.low:+.3f}, "
                  f"{row.high:+.3f}]  (holdout {row.holdout})")
    else:
        print("no outcome of an assignment has arrived yet (they arrive 23 days after it)")
    close = outreach["closeness"]
    if close:
        share = close["policy"] / close["best"] if close["best"] else float("nan")
        print(f"net value of the policy's contacts over {close['days']} days: {close['policy']:,.0f} "
              f"= {share:.0%} of the best possible allocation ({close['best']:,.0f}, from the simulator's truth)")


def print_summary(summary: dict) -> None:
    from churn.ops.query import print_frame

    m = summary["metrics"]
    print("\n=== champion", summary["champion"], "===")
    print(
        f"validation (out of time, {summary['validation_rows']} trials):  AUC {m.get('roc_auc', float('nan')):.3f}   "
        f"PR-AUC {m.get('pr_auc', float('nan')):.3f}   log-loss {m.get('log_loss', float('nan')):.3f}   "
        f"\nflagged at_risk when p_retained < {m.get('threshold', float('nan')):.3f}: "
        f"{m.get('flagged_share', float('nan')):.0%} of trials; precision of at_risk "
        f"{m.get('at_risk_precision', float('nan')):.2f} (flagged trials that churned), recall of at_risk "
        f"{m.get('at_risk_recall', float('nan')):.2f} (churned trials that were flagged)"
    )
    print(f"best possible AUC on the same trials (simulator's true p_convert): {summary['best_possible_auc']:.3f}")
    print(
        f"\n=== most at-risk trials that started a week before {summary['latest_dt']} "
        f"({summary['scored_latest']} scored) ==="
    )
    print(f"{'instance_id':<22} {'started':<10}  {'p_retained':>10}  why (what pulls the probability down most)")
    for row in summary["at_risk"].itertuples():
        texts = [t for t in (getattr(row, f"reason_{k}_text", None) or getattr(row, f"reason_{k}_feature")
                             for k in (1, 2, 3)) if isinstance(t, str)]
        print(f"{row.instance_id:<22} {str(row.eval_start_date):<10}  {row.p_retained:>10.3f}  {texts[0] if texts else '-'}")
        for text in texts[1:]:
            print(f"{'':<48}  {text}")
    drift = summary["drift"]
    shifts = ", ".join(f"{r.feature} {r.psi:.3f}" for r in drift.itertuples())
    alerts = int(drift["alert"].notna().sum())
    print(f"\ndrift of {summary['latest_dt']} against the scoring model's training profile (largest PSI): {shifts}; "
          f"{alerts} alert(s) (PSI > 0.25)")
    incident = summary.get("incident")
    if incident:
        days = incident["days"]
        print(f"ALERT: drift of {', '.join(incident['features'])} on {len(days)} day(s) ({days[0]} … {days[-1]}): the "
              "churn_monitoring runs of those days are red (check_alerts); look at the dashboard below or open them in "
              "the Airflow UI (make airflow)")
    perf = summary["performance"]
    if len(perf):
        for version, part in perf.groupby("model_version"):
            n = int(part["scored_rows"].sum())
            auc = (part["roc_auc"] * part["scored_rows"]).sum() / part.loc[part["roc_auc"].notna(), "scored_rows"].sum()
            loss = (part["log_loss"] * part["scored_rows"]).sum() / n
            print(f"realised performance of {version} once outcomes arrived ({len(part)} days, {n} trials, "
                  f"{part['dt'].min()} … {part['dt'].max()}): AUC {auc:.3f}, log-loss {loss:.3f} "
                  f"(its validation AUC {part['validation_roc_auc'].iloc[0]:.3f})")
    else:
        print("realised performance: no scored trial has reached the end of its label window yet")
    print_outreach(summary.get("outreach") or {})
    print(f"\nHTML report of the champion: {summary['report']}")
    print(f"monitoring dashboard (rewritten by every monitoring run; `churn monitor report`): {summary['dashboard']}")
    print(f'\nquery the tables with Athena SQL (DuckDB locally):\n  .venv/bin/churn query "{QUERY_EXAMPLE}"')
    print_frame(summary["query"])
    print("\nsee the DAG runs: make airflow   (then open http://127.0.0.1:8080, user admin, password printed there)")
    print(f"demo finished in {summary['seconds']} s")
