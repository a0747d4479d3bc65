"""The outreach policy: which scored trial to contact, through which channel, learned every day (issue 13).

A GAME model in the sense of Lambda Learner (shared/seeds/002): the champion's log-odds of conversion is the
fixed effect, an offset; each arm (``none`` and every channel) has a small Bayesian logistic model on top of it,
with segment and risk-band terms (the random effects):

    P(convert | arm a, trial x) = sigmoid(champion_log_odds(x) + z(x) . theta_a),   theta_a ~ N(mean_a, H_a^-1)

The ``none`` arm learns how far the champion is off without contact; a channel's value for a trial is the
conversion value times its uplift over ``none`` minus the channel's cost. Every day the policy draws one set of
coefficients from their posteriors (batched Thompson sampling: arms it is unsure of get tried in proportion to the
chance that they are best; one draw for the day's batch, as the posterior only changes between batches, so the
capacity goes to the trials worth most under that draw rather than to trials lifted by their own draw's noise),
fills each channel's daily capacity with the trials worth most, keeps a
deterministic random holdout uncontacted, and records each assignment's propensity. When the outcomes of a
day's assignments are known, each arm's posterior is updated with that mini-batch only, the previous posterior
as the prior, discounted by a forgetting factor (lambda-learner's sequential Bayesian logistic trainer): no
full retrain.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit

NONE = "none"
# z(x): a contact matters most for undecided trials (4 p (1 - p): 1 at p = 0.5, the champion's p), so the segment
# terms are scaled by it; intercept and the two outer risk bands let each arm correct the champion's calibration
TERMS = ("intercept", "undecided", "undecided_small", "undecided_large", "undecided_mobile", "risk_lost", "risk_sure")
SMALL_RANKS, LARGE_RANKS = 2, 4  # company_size_rank (1 = 1-10 people … 5 = 1000+): <= 2 small, >= 4 large
MOBILE_SEGMENT = 0.15  # share of week-1 events from a mobile client from which a trial is in the mobile segment
RISK_LOST, RISK_SURE = 0.12, 0.55  # champion conversion probability: below = likely lost, above = likely won


class OutreachError(ValueError):
    """Bad outreach input or configuration; the message names what and how to fix it."""


@dataclass(frozen=True)
class Channel:
    name: str
    cost: float  # per contact, in the unit of the conversion value
    capacity: int  # contacts per day


@dataclass(frozen=True)
class PolicyConfig:
    channels: tuple[Channel, ...]
    conversion_value: float = 250.0
    holdout: float = 0.10
    forgetting: float = 0.995  # lambda-learner's delta: the weight of yesterday's posterior (memory ~200 days)
    prior_precision: float = 4.0  # of every coefficient before any outcome (lambda-learner's penalty)
    propensity_draws: int = 30

    @property
    def arms(self) -> tuple[str, ...]:
        return (NONE, *(c.name for c in self.channels))

    def channel(self, name: str) -> Channel:
        return next(c for c in self.channels if c.name == name)

    @classmethod
    def parse_channels(cls, text: str) -> tuple[Channel, ...]:
        """``email:0.5:1000,call:20:40`` (name:cost:daily capacity) → channels; a clear error otherwise."""
        channels = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            parts = item.split(":")
            if len(parts) != 3:
                raise OutreachError(f"outreach channel {item!r}: expected name:cost:daily_capacity, e.g. call:20:40")
            name, cost, capacity = parts
            if not name.isidentifier() or name == NONE:
                raise OutreachError(f"outreach channel name {name!r}: a plain word other than {NONE!r}")
            try:
                channels.append(Channel(name, float(cost), int(capacity)))
            except ValueError:
                raise OutreachError(f"outreach channel {item!r}: cost must be a number and capacity an integer") from None
            if channels[-1].cost < 0 or channels[-1].capacity < 0:
                raise OutreachError(f"outreach channel {item!r}: cost and capacity must be >= 0")
        if len({c.name for c in channels}) != len(channels):
            raise OutreachError(f"outreach channels {text!r}: a channel is listed twice")
        return tuple(channels)


@dataclass
class Posterior:
    """One arm's coefficients: mean and precision (the Hessian lambda-learner maintains)."""

    mean: np.ndarray
    precision: np.ndarray

    def covariance_factor(self) -> np.ndarray:
        """L with L L^T = precision^-1, to draw coefficients."""
        return np.linalg.cholesky(np.linalg.inv(self.precision))


@dataclass
class PolicyState:
    """Every arm's posterior; what a policy version is."""

    posteriors: dict[str, Posterior]
    batches: int = 0  # outcome mini-batches learned so far
    outcomes: int = 0  # outcomes learned so far
    learned_days: list[str] = field(default_factory=list)

    @classmethod
    def prior(cls, config: PolicyConfig, arms: tuple[str, ...] | None = None) -> PolicyState:
        d = len(TERMS)
        return cls({arm: Posterior(np.zeros(d), np.eye(d) * config.prior_precision)
                    for arm in (config.arms if arms is None else arms)})

    def with_arms(self, config: PolicyConfig, arms) -> PolicyState:
        """This state with a prior posterior for each of ``arms`` it has none for (a channel new to the setting)."""
        added = tuple(arm for arm in dict.fromkeys(arms) if arm not in self.posteriors)
        if not added:
            return self
        return PolicyState({**self.posteriors, **PolicyState.prior(config, added).posteriors}, self.batches,
                           self.outcomes, list(self.learned_days))

    def to_json(self) -> dict:
        return {"terms": list(TERMS), "batches": self.batches, "outcomes": self.outcomes,
                "learned_days": self.learned_days,
                "arms": {arm: {"mean": p.mean.tolist(), "precision": p.precision.tolist()}
                         for arm, p in self.posteriors.items()}}

    @classmethod
    def from_json(cls, data: dict) -> PolicyState:
        if list(data.get("terms", [])) != list(TERMS):
            raise OutreachError(f"policy state has terms {data.get('terms')}, this code expects {list(TERMS)}")
        return cls({arm: Posterior(np.array(v["mean"], dtype=float), np.array(v["precision"], dtype=float))
                    for arm, v in data["arms"].items()},
                   int(data["batches"]), int(data["outcomes"]), list(data.get("learned_days", [])))


def design(trials: pd.DataFrame) -> np.ndarray:
    """z(x) for each trial (:data:`TERMS`), from ``log_odds`` (the champion's), ``company_size_rank`` (the
    feature; unknown: neither small nor large) and ``mobile_share`` (the share of week-1 events from a mobile
    client)."""
    p = expit(trials["log_odds"].to_numpy(float))
    undecided = 4 * p * (1 - p)
    rank = trials["company_size_rank"].to_numpy(float)
    return np.column_stack([
        np.ones(len(trials)),
        undecided,
        undecided * (rank <= SMALL_RANKS),
        undecided * (rank >= LARGE_RANKS),
        undecided * trials["mobile_share"].fillna(0.0).to_numpy(float),
        (p < RISK_LOST).astype(float),
        (p > RISK_SURE).astype(float),
    ])


def in_holdout(instance_ids: pd.Series, version: str, fraction: float) -> np.ndarray:
    """A fixed random share of trials kept uncontacted: from the sha256 of (version, instance id), so a rerun
    draws the same holdout and every policy version draws a new one."""
    def unit(instance_id: str) -> float:
        return int.from_bytes(hashlib.sha256(f"{version}|{instance_id}".encode()).digest()[:8], "big") / 2**64
    return np.fromiter((unit(i) < fraction for i in instance_ids), dtype=bool, count=len(instance_ids))


def values(config: PolicyConfig, offsets: np.ndarray, z: np.ndarray, thetas: dict[str, np.ndarray]) -> np.ndarray:
    """(trials, arms) net value of each arm: conversion value x uplift over ``none`` - cost (``none``: 0), with
    ``thetas[arm]`` the arm's coefficients (a Thompson draw, or the posterior means)."""
    def prob(arm: str) -> np.ndarray:
        return expit(offsets + z @ thetas[arm])
    base = prob(NONE)
    out = np.zeros((len(offsets), len(config.arms)))
    for k, channel in enumerate(config.channels, 1):
        out[:, k] = config.conversion_value * (prob(channel.name) - base) - channel.cost
    return out


def allocate(config: PolicyConfig, value: np.ndarray, share: float = 1.0) -> np.ndarray:
    """Arm index per trial: greedily the (trial, channel) pairs of highest positive value, each channel up to its
    daily capacity divided by ``share`` (the share of trials that will be contacted), each trial at most once;
    the rest get ``none`` (index 0)."""
    n, arms = value.shape
    chosen = np.zeros(n, dtype=np.int64)
    left = np.array([0, *(int(np.ceil(c.capacity / share)) for c in config.channels)])
    flat = np.argsort(-value[:, 1:], axis=None, kind="stable")
    trial, arm = np.divmod(flat, arms - 1)
    arm = arm + 1
    good = value[trial, arm] > 0
    taken = np.zeros(n, dtype=bool)
    for t, a in zip(trial[good], arm[good], strict=True):
        if not taken[t] and left[a] > 0:
            taken[t], chosen[t] = True, a
            left[a] -= 1
            if not left[1:].any():
                break
    return chosen


def draw(state: PolicyState, factors: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One Thompson draw of every arm's coefficients (``factors``: each arm's covariance factor)."""
    return {arm: state.posteriors[arm].mean + factor @ rng.standard_normal(len(factor))
            for arm, factor in factors.items()}


def assign(config: PolicyConfig, state: PolicyState, trials: pd.DataFrame, version: str, seed: int) -> pd.DataFrame:
    """The day's assignment: one row per trial with ``channel`` (or ``none``), ``intended`` (what the policy chose
    before the holdout), ``holdout``, ``propensity`` of the channel given, ``expected_gain`` (posterior mean).

    ``trials``: instance_id, log_odds, company_size_rank, mobile_share. Deterministic in (version, seed).
    """
    missing = [c for c in config.arms if c not in state.posteriors]
    if missing:
        raise OutreachError(f"channel(s) {missing} are configured but the policy state has no posterior for them; "
                            "start them from the prior (PolicyState.with_arms, as churn outreach assign does) or "
                            "remove them from CHURN_OUTREACH_CHANNELS")
    if trials["instance_id"].duplicated().any():
        dupes = trials.loc[trials["instance_id"].duplicated(), "instance_id"].head(5).tolist()
        raise OutreachError(f"scored trials: instance_id must be unique, e.g. {dupes}")
    n = len(trials)
    offsets = trials["log_odds"].to_numpy(float)
    z = design(trials)
    rng = np.random.default_rng(np.random.SeedSequence([seed, int(hashlib.sha256(version.encode()).hexdigest()[:8], 16)]))
    # Every trial gets the policy's choice ("intended") by one rule, holdout or not, so the holdout is a random
    # share of each channel's trials; capacities are divided by the contacted share so the holdout does not
    # leave contacts unused. Should chance put more than a capacity outside the holdout, the lowest-valued
    # extras are not contacted (``overflow``: neither contacted nor holdout, left out of the comparison).
    factors = {arm: state.posteriors[arm].covariance_factor() for arm in config.arms}
    sampled = values(config, offsets, z, draw(state, factors, rng))
    chosen = allocate(config, sampled, share=1 - config.holdout)
    counts = np.zeros((n, len(config.arms)))
    for _ in range(config.propensity_draws):  # how often each arm is chosen over further independent day draws
        again = allocate(config, values(config, offsets, z, draw(state, factors, rng)), 1 - config.holdout)
        counts[np.arange(n), again] += 1
    shares = (counts + 1.0 / len(config.arms)) / (config.propensity_draws + 1.0)  # smoothed: never 0
    holdout = in_holdout(trials["instance_id"], version, config.holdout) & (chosen > 0)
    overflow = np.zeros(n, dtype=bool)
    for k, channel in enumerate(config.channels, 1):
        contacted = np.flatnonzero((chosen == k) & ~holdout)
        if len(contacted) > channel.capacity:
            order = contacted[np.argsort(-sampled[contacted, k], kind="stable")]
            overflow[order[channel.capacity:]] = True
    given = np.where(holdout | overflow, 0, chosen)
    # P(the channel given | x): a channel is given when intended and not held out; none when intended, or held out
    propensity = np.where(given == 0, shares[:, 0] + config.holdout * (1 - shares[:, 0]),
                          (1 - config.holdout) * shares[np.arange(n), given])
    means = {arm: state.posteriors[arm].mean for arm in config.arms}
    gain = values(config, offsets, z, means)[np.arange(n), given]
    arms = np.array(config.arms, dtype=object)
    return pd.DataFrame({
        "instance_id": trials["instance_id"].to_numpy(),
        "channel": arms[given],
        "intended": arms[chosen],
        "holdout": holdout,
        "overflow": overflow,
        "propensity": propensity,
        "expected_gain": gain,
        "policy_version": version,
    })


def learn(config: PolicyConfig, state: PolicyState, outcomes: pd.DataFrame, day: str) -> PolicyState:
    """Yesterday's posterior updated with one day's outcomes only (``instance_id``, ``channel``, ``log_odds``,
    ``company_size_rank``, ``mobile_share``, ``converted``): lambda-learner's sequential Bayesian logistic
    regression per arm, the previous posterior as the prior with forgetting factor ``config.forgetting``."""
    from linkedin.learner.ds.indexed_dataset import IndexedDataset
    from linkedin.learner.ds.indexed_model import IndexedModel
    from linkedin.learner.prediction.hessian_type import HessianType
    from linkedin.learner.prediction.trainer_sequential_bayesian_logistic_loss_with_l2 import (
        TrainerSequentialBayesianLogisticLossWithL2,
    )
    from scipy import sparse

    if day in state.learned_days:
        raise OutreachError(f"outcomes of {day} were already learned by this policy state (learned twice would "
                            "count them twice); nothing changed")
    unknown = sorted(set(outcomes["channel"]) - set(state.posteriors))
    if unknown:
        raise OutreachError(f"outcomes of {day} have channel(s) {unknown} the policy state does not know")
    posteriors = dict(state.posteriors)
    z = design(outcomes)
    for arm in sorted(set(outcomes["channel"])):
        rows = (outcomes["channel"] == arm).to_numpy()
        y = np.where(outcomes.loc[rows, "converted"].to_numpy(bool), 1.0, -1.0)
        data = IndexedDataset(sparse.csr_matrix(z[rows]), y, np.ones(int(rows.sum())),
                              outcomes.loc[rows, "log_odds"].to_numpy(float))
        prior = posteriors[arm]
        trainer = TrainerSequentialBayesianLogisticLossWithL2(
            training_data=data, initial_model=IndexedModel(prior.mean.copy(), sparse.csr_matrix(prior.precision)),
            hessian_type=HessianType.FULL, penalty=config.prior_precision, delta=config.forgetting)
        model, _, _ = trainer.train()
        precision = model.hessian.toarray() if sparse.issparse(model.hessian) else np.asarray(model.hessian)
        posteriors[arm] = Posterior(np.asarray(model.theta, dtype=float), (precision + precision.T) / 2)
    return PolicyState(posteriors, state.batches + 1, state.outcomes + len(outcomes), [*state.learned_days, day])


def trials_of(predictions: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """instance_id, log_odds (of the champion's p_retained), company_size_rank, mobile_share: one row per scored
    trial, what :func:`design` and the segments read."""
    trials = predictions[["instance_id", "p_retained"]].merge(
        features[["instance_id", "company_size_rank", "mobile_usage", "w1_events"]], on="instance_id", how="left")
    p = trials["p_retained"].astype(float).clip(1e-6, 1 - 1e-6)
    events = trials["w1_events"].astype(float)
    return pd.DataFrame({
        "instance_id": trials["instance_id"],
        "log_odds": np.log(p / (1 - p)),
        "company_size_rank": trials["company_size_rank"].astype(float),
        "mobile_share": np.where(events > 0, trials["mobile_usage"].astype(float) / events.where(events > 0), 0.0),
    })
