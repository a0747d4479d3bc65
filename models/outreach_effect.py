"""What outreach is worth, measured: the holdout's uplift per channel and segment, its interval, the cost per saved
conversion, and the off-policy value of another policy on the logged assignments."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from churn.models.evaluate import wilson_interval
from churn.models.outreach import LARGE_RANKS, MOBILE_SEGMENT, NONE, SMALL_RANKS, OutreachError, PolicyConfig

SEGMENTS = ("all", "small", "large", "mobile")


def uplift(assignments: pd.DataFrame, z_value: float = 1.96) -> pd.DataFrame:
    """Per intended channel: the holdout comparison. Among trials the policy chose a channel for, the holdout is
    a random share kept uncontacted, so contacted minus holdout conversion rate is an unbiased estimate of the
    channel's average effect on the trials it is used for; its 95% interval is Newcombe's (from the two Wilson
    intervals), which stays honest with a holdout of a few trials or a rate of 0 or 1.

    ``assignments``: channel, intended, holdout, converted (and optionally segment columns, grouped by ``by``).
    """
    rows = []
    overflow = assignments["overflow"] if "overflow" in assignments else pd.Series(False, index=assignments.index)
    chosen = assignments[(assignments["intended"] != NONE) & ~overflow.astype(bool)]
    for channel, group in chosen.groupby("intended"):
        treated, held = group[~group["holdout"]], group[group["holdout"]]
        n1, n0 = len(treated), len(held)
        x1, x0 = int(treated["converted"].sum()), int(held["converted"].sum())
        estimate, low, high = uplift_interval(n1, x1, n0, x0, z_value)
        rows.append({"channel": channel, "contacted": n1, "converted": x1, "holdout": n0, "holdout_converted": x0,
                     "uplift": estimate, "uplift_low": low, "uplift_high": high})
    return pd.DataFrame(rows)


def uplift_interval(contacted: int, converted: int, holdout: int, holdout_converted: int, z_value: float = 1.96
                    ) -> tuple[float, float, float]:
    """Contacted minus holdout conversion rate and Newcombe's interval of it (from the two Wilson intervals);
    NaN where a group is empty."""
    r1 = converted / contacted if contacted else np.nan
    r0 = holdout_converted / holdout if holdout else np.nan
    if not (contacted and holdout):
        return r1 - r0, np.nan, np.nan
    (l1, u1), (l0, u0) = wilson_interval(r1, contacted, z_value), wilson_interval(r0, holdout, z_value)
    return (r1 - r0, r1 - r0 - float(np.sqrt((r1 - l1) ** 2 + (u0 - r0) ** 2)),
            r1 - r0 + float(np.sqrt((u1 - r1) ** 2 + (r0 - l0) ** 2)))


def off_policy_value(config: PolicyConfig, logged: pd.DataFrame, target: np.ndarray) -> dict:
    """Net value (conversion value x conversions gained over no contact, minus cost) that another policy would
    have had on logged trials, estimated from what this policy did: ``logged`` (channel, propensity, converted:
    one row per trial) and ``target`` (the channel the other policy gives each row). Self-normalised inverse
    propensity weighting: a row counts for a policy when that policy gives the channel the row got, weighted
    by 1 / the recorded propensity; the no-contact value is estimated the same way and subtracted.

    Returns the estimate, the rows that match ``target``, the effective sample size of their weights (a few
    dozen or fewer: the estimate is noise) and ``coverage``, the weights' sum per trial: about 1 when the
    logged policy gives the target's channels a chance for every trial, well below 1 when it (almost) never
    does what the target does for some trials — the estimate then says nothing about those, and is not to be
    trusted (inverse propensity weighting needs the logged policy to have explored where the target goes)."""
    channel = logged["channel"].to_numpy(object)
    target = np.asarray(target, dtype=object)
    if len(target) != len(logged):
        raise OutreachError(f"off-policy value: {len(target)} target channels for {len(logged)} logged trials")
    propensity = logged["propensity"].to_numpy(float)
    outside = ~((propensity > 0) & (propensity <= 1))
    if outside.any():
        raise OutreachError(f"off-policy value: every logged propensity must be in (0, 1]; {int(outside.sum())} rows "
                            "are not")
    costs = {NONE: 0.0, **{c.name: c.cost for c in config.channels}}
    for what, given in (("target", target), ("logged", channel)):
        unknown = sorted(set(given) - set(costs))
        if unknown:
            raise OutreachError(f"off-policy value: {what} channel(s) {unknown} are not configured")
    reward = config.conversion_value * logged["converted"].to_numpy(float) - np.array([costs[c] for c in channel])
    n = len(logged)

    def mean_reward(gives: np.ndarray) -> tuple[float, dict]:
        weight = (channel == gives) / propensity
        if not weight.any():
            return np.nan, {"matched": 0, "effective_size": 0.0, "coverage": 0.0}
        return float((weight * reward).sum() / weight.sum()), {
            "matched": int((weight > 0).sum()), "effective_size": float(weight.sum() ** 2 / (weight**2).sum()),
            "coverage": float(weight.sum() / n)}

    value, diagnostics = mean_reward(target)
    baseline, _ = mean_reward(np.full(n, NONE, dtype=object))
    return {"net_value": n * (value - baseline), **diagnostics}


def effect_rows(joined: pd.DataFrame, config: PolicyConfig, assigned: date) -> pd.DataFrame:
    """Per channel and segment: the holdout comparison (:func:`uplift`), cost, cost per saved conversion."""
    masks = {"all": np.ones(len(joined), dtype=bool),
             "small": (joined["company_size_rank"] <= SMALL_RANKS).to_numpy(),
             "large": (joined["company_size_rank"] >= LARGE_RANKS).to_numpy(),
             "mobile": (joined["mobile_share"] >= MOBILE_SEGMENT).to_numpy()}
    rows = []
    costs = {c.name: c.cost for c in config.channels}
    for segment in SEGMENTS:
        table = uplift(joined[masks[segment]])
        for _, row in table.iterrows():
            cost = costs.get(row["channel"], np.nan) * row["contacted"]
            saved = row["uplift"] * row["contacted"]
            rows.append({**row.to_dict(), "segment": segment, "cost": cost,
                         "cost_per_saved_conversion": cost / saved if saved > 0 else np.nan, "assigned_dt": assigned})
    columns = ["channel", "segment", "contacted", "converted", "holdout", "holdout_converted", "uplift", "uplift_low",
               "uplift_high", "cost", "cost_per_saved_conversion", "assigned_dt"]
    return pd.DataFrame(rows, columns=columns)
