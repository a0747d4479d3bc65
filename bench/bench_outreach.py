"""Benchmark the outreach policy on the simulator: 120 days, five policies in one run, exact values from the truth.

Every day the trials whose first week just ended are scored (the champion's log-odds: the true log-odds plus
model error) and each policy assigns channels under the same daily capacities (defaults of the settings):
  none        no outreach (the reference every value is measured against)
  random      a random channel for random trials, up to each capacity
  riskiest    "call the riskiest up to capacity": a call for the lowest scores, nothing else
  learned     the product's policy (churn.models.outreach: Thompson sampling over lambda-learner posteriors, 10%
              holdout), learning each cohort's outcomes when they are known (30 days after eval start)
  oracle      the same allocation with the true probabilities under every channel
A policy's net value on a day is exact, from the simulator's truth: sum over trials of conversion value x
(P(convert | its channel) - P(convert | none)) - cost. The learned policy's holdout estimate of each channel's
uplift is checked against the true average effect on the trials it was used for, over several seeds.
Writes docs/benchmarks.md (section "Outreach policy").
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import record  # noqa: E402
from churn.core.settings import Settings  # noqa: E402
from churn.dev.simulator import _instances, outreach_probabilities  # noqa: E402
from churn.models.outreach import PolicyConfig, PolicyState, allocate, assign, learn  # noqa: E402
from churn.models.outreach_effect import off_policy_value, uplift  # noqa: E402

LABEL_DAYS, FIRST_WEEK = 30, 7
MODEL_ERROR = 0.7  # sd of the champion's log-odds error (a week-1 model does not see intent)


RECORDED_WEEKS = (1, 4, 8, 12)  # and the last week

def config_from_settings(settings: Settings) -> PolicyConfig:
    return PolicyConfig(PolicyConfig.parse_channels(settings.outreach_channels),
                        settings.outreach_conversion_value, settings.outreach_holdout,
                        settings.outreach_forgetting, settings.outreach_prior_precision)


def run(seed: int, days: int, per_day: int, config: PolicyConfig) -> dict:
    world = _instances(date(2026, 1, 5), days, per_day, seed)
    rng = np.random.default_rng(seed + 1000)
    truth = outreach_probabilities(world.p_convert, world.size_band, world.mobile_share)
    arms = config.arms
    true_p = np.column_stack([truth[a] for a in arms])  # (n, arms)
    logit = np.log(world.p_convert / (1 - world.p_convert))
    trials = pd.DataFrame({
        "instance_id": np.asarray(world.instance_ids.to_pylist()),
        "log_odds": logit + rng.normal(0, MODEL_ERROR, world.n),
        "company_size_rank": world.size_band + 1.0,
        # what week 1 shows of mobile use: the share of ~150 events from a mobile client
        "mobile_share": rng.binomial(150, world.mobile_share) / 150,
    })
    chance = world.chance  # the world's own draw: a trial converts under arm a iff chance < P(a), for every policy
    value = config.conversion_value
    costs = np.array([0.0, *(c.cost for c in config.channels)])
    names = ("random", "riskiest", "learned", "oracle")
    net, saved, spent = ({k: np.zeros(days) for k in names} for _ in range(3))
    state, pending, log, seconds = PolicyState.prior(config), {}, [], []
    call = arms.index("call") if "call" in arms else None
    for d in range(days):
        rows = np.flatnonzero(world.start_idx == d)
        if len(rows) == 0:
            continue
        cohort = trials.iloc[rows].reset_index(drop=True)
        gain = value * (true_p[rows] - true_p[rows, :1]) - costs[None, :]  # exact value of each arm per trial
        picks = {"oracle": allocate(config, np.where(np.arange(len(arms)) == 0, 0.0, gain))}
        random_value = rng.random((len(rows), len(arms)))
        random_value[:, 0] = 0
        picks["random"] = allocate(config, random_value)
        riskiest = np.zeros(len(rows), dtype=np.int64)
        if call is not None:
            order = np.argsort(cohort["log_odds"].to_numpy())[: config.channels[call - 1].capacity]
            riskiest[order] = call
        picks["riskiest"] = riskiest
        started = time.perf_counter()
        assigned = assign(config, state, cohort, version=f"seed{seed}-day{d}", seed=seed)
        seconds.append(time.perf_counter() - started)
        picks["learned"] = np.array([arms.index(c) for c in assigned["channel"]])
        for name, chosen in picks.items():
            net[name][d] = gain[np.arange(len(rows)), chosen].sum()
            saved[name][d] = (true_p[rows, chosen] - true_p[rows, 0]).sum()
            spent[name][d] = costs[chosen].sum()
        assigned["converted"] = chance[rows] < true_p[rows, picks["learned"]]
        assigned["true_effect"] = (true_p[rows, [arms.index(c) for c in assigned["intended"]]] - true_p[rows, 0])
        assigned["day"] = d
        for name in ("random", "riskiest", "oracle"):  # what the others gave these trials: valued off-policy below
            assigned[f"pick_{name}"] = np.asarray(arms, dtype=object)[picks[name]]
        log.append(assigned)
        pending[d + LABEL_DAYS - FIRST_WEEK] = assigned.join(cohort.drop(columns="instance_id"))
        if d in pending:  # outcomes of the cohort assigned 23 days ago are known today
            state = learn(config, state, pending.pop(d), day=f"day{d}")
    return {"net": net, "saved": saved, "spent": spent, "log": pd.concat(log, ignore_index=True),
            "seconds": seconds, "state": state}


def timing(config: PolicyConfig, trials: int = 10_000) -> tuple[float, float]:
    """Seconds to assign, and to learn one day's outcomes, for ``trials`` scored trials."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"instance_id": [f"i-{k}" for k in range(trials)], "log_odds": rng.normal(-1.3, 1.2, trials),
                          "company_size_rank": rng.integers(1, 6, trials).astype(float),
                          "mobile_share": rng.beta(1.5, 7, trials)})
    started = time.perf_counter()
    assigned = assign(config, PolicyState.prior(config), frame, version="timing", seed=1)
    assign_s = time.perf_counter() - started
    outcomes = assigned.join(frame.drop(columns="instance_id"))
    outcomes["converted"] = rng.random(trials) < 0.2
    started = time.perf_counter()
    learn(config, PolicyState.prior(config), outcomes, day="timing")
    return assign_s, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--instances-per-day", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    config = config_from_settings(Settings(_env_file=None))
    weekly, coverage, shares, off_policy = [], [], [], []
    for seed in range(1, args.seeds + 1):
        result = run(seed, args.days, args.instances_per_day, config)
        net = result["net"]
        weeks = args.days // 7
        for w in range(weeks):
            span = slice(7 * w, 7 * w + 7)
            weekly.append({"seed": seed, "week": w + 1, **{k: v[span].sum() for k, v in net.items()},
                           **{f"{k}_saved": v[span].sum() for k, v in result["saved"].items()},
                           **{f"{k}_cost": v[span].sum() for k, v in result["spent"].items()}})
        late = slice(56, args.days)  # after 8 weeks
        shares.append({k: v[late].sum() / net["oracle"][late].sum() for k, v in net.items()})
        settled = result["log"][result["log"]["day"] >= 28]  # once the policy has had outcomes to learn from
        estimates = uplift(settled)
        for _, row in estimates.iterrows():
            used = settled[settled["intended"] == row["channel"]]
            effect = used["true_effect"].mean()
            coverage.append(row["uplift_low"] <= effect <= row["uplift_high"])
        late_log = result["log"][result["log"]["day"] >= 56]
        for name in ("random", "riskiest", "oracle"):
            estimate = off_policy_value(config, late_log, late_log[f"pick_{name}"].to_numpy())
            off_policy.append({"seed": seed, "policy": name, "estimate": estimate["net_value"],
                               "true": net[name][late].sum(), "coverage": estimate["coverage"],
                               "effective_size": estimate["effective_size"]})
        print(pd.DataFrame(off_policy[-3:]).round(2).to_string(index=False))
        print(f"seed {seed}: after week 8 the learned policy has {shares[-1]['learned']:.0%} of the oracle's net value; "
              f"assignment {np.mean(result['seconds']):.2f} s/day; uplift intervals\n{estimates.round(4)}", flush=True)
    by_week = pd.DataFrame(weekly).groupby("week").mean().drop(columns="seed")
    share = pd.DataFrame(shares).mean()
    assign_s, learn_s = timing(config)
    print(by_week.round(0))
    print("share of oracle after week 8:", share.round(3).to_dict(), "coverage:", np.mean(coverage))
    print(f"10k trials: assign {assign_s:.2f} s, learn {learn_s:.2f} s")
    columns = ["week", "net value: none", "random", "riskiest", "learned", "oracle", "learned / oracle",
               "learned regret", "saved conversions: learned / oracle", "cost: learned / oracle"]
    for week, row in by_week.iterrows():
        if week not in RECORDED_WEEKS and week != by_week.index.max():
            continue  # the console shows every week; docs/benchmarks.md the milestones
        record("Outreach policy", columns,
               [week, 0, f"{row['random']:,.0f}", f"{row['riskiest']:,.0f}", f"{row['learned']:,.0f}",
                f"{row['oracle']:,.0f}", f"{row['learned'] / row['oracle']:.0%}", f"{row['oracle'] - row['learned']:,.0f}",
                f"{row['learned_saved']:,.0f} / {row['oracle_saved']:,.0f}",
                f"{row['learned_cost']:,.0f} / {row['oracle_cost']:,.0f}"],
               key=str(week))
    ope = pd.DataFrame(off_policy).groupby("policy")[["estimate", "true", "coverage", "effective_size"]].mean()
    print("off-policy estimates of each policy's net value after week 8, from the learned policy's log (mean of seeds)")
    print(ope.round(0))
    ope_text = "; ".join(f"{name} {row['estimate']:,.0f} vs true {row['true']:,.0f} (coverage {row['coverage']:.2f}, "
                         f"effective n {row['effective_size']:,.0f})" for name, row in ope.iterrows())
    summary = (f"after week 8: learned {share['learned']:.0%} of the oracle's net value, riskiest {share['riskiest']:.0%}, "
               f"random {share['random']:.0%}; learned minus riskiest {share['learned'] - share['riskiest']:+.0%} of the "
               f"oracle's value; holdout "
               f"uplift intervals cover the true effect in {np.mean(coverage):.0%} of {len(coverage)} (channel, seed); "
               f"10k trials: assign {assign_s:.1f} s, learn {learn_s:.2f} s; off-policy estimates of the net value after "
               f"week 8 from the learned policy's propensities (mean of seeds): {ope_text}")
    record("Outreach policy", columns, ["summary", "", "", "", summary, "", "", "", "", ""], key="summary")


if __name__ == "__main__":
    main()
