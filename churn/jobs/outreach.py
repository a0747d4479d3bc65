"""Jobs: the day's outreach assignments after scoring, and the policy's update when their outcomes are known.

``assign_day(D)`` reads the champion's predictions of dt=D and the trials' segments from instances_w1 dt=D and
publishes ``outreach_assignments`` dt=D with the current policy version. ``learn_day(D)`` takes the outcomes
that became known on D (instances_modeling dt=D: the trials that started D - label_window_days), joins them to
their assignments (made label_window_days - first_week_days earlier), updates the policy with that mini-batch
only (a new version in the policy registry) and publishes ``outreach_effect`` dt=D. Both are pure functions of
their day: a rerun overwrites the same partition; a day's outcomes are learned once.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from churn.core.settings import Settings
from churn.jobs.summaries import OutreachAssignSummary, OutreachLearnSummary, Skipped, json_safe

# numpy / pandas are imported inside the functions: DAG files import this package at parse time

log = logging.getLogger("churn.outreach")


def policy_config(settings: Settings):
    from churn.models.outreach import PolicyConfig

    return PolicyConfig(PolicyConfig.parse_channels(settings.outreach_channels), settings.outreach_conversion_value,
                        settings.outreach_holdout, settings.outreach_forgetting, settings.outreach_prior_precision)


def assigned_day(outcome_day: date, settings: Settings) -> date:
    """The day the trials whose outcomes are known on ``outcome_day`` were assigned (their first week's end)."""
    return outcome_day - timedelta(days=settings.label_window_days - settings.first_week_days)


def _current_policy(settings: Settings, config, also: tuple[str, ...] = ()):
    """(state, version): the registry's current policy with a posterior for every configured channel and every
    channel in ``also`` (one added to the configuration, or one with outcomes but removed before its first
    learning, starts from the prior); before any learning, the prior, version ``prior``."""
    from churn.models.outreach import PolicyState
    from churn.models.policy_registry import PolicyRegistry

    current = PolicyRegistry(settings).current()
    state, version = (PolicyState.prior(config), "prior") if current is None else (current[0], current[1]["version"])
    wanted = (*config.arms, *also)
    added = [arm for arm in dict.fromkeys(wanted) if arm not in state.posteriors]
    if added and current is not None:
        log.warning("outreach: channel(s) %s have no posterior yet: they start from the prior", added)
    return state.with_arms(config, wanted), version


def _segments_of(day: date, settings: Settings):
    """The trials scored on D with what the policy needs of them (:func:`churn.models.outreach.trials_of`)."""
    from churn.core.warehouse import read_partition
    from churn.models.outreach import trials_of

    return trials_of(read_partition("instances_w1_scored", day, settings), read_partition("instances_w1", day, settings))


def assign_day(day: date, settings: Settings) -> dict:
    """Publish ``outreach_assignments`` dt=D for the trials scored on D. A published day is immutable (the CRM may
    have acted on it, and ``learn`` joins outcomes to it): a rerun reproduces it with the policy version it was made
    with, and refuses, writing nothing, when that no longer gives the same rows."""
    from churn.core.warehouse import PartitionNotFound, list_partitions, read_partition, write_partitions
    from churn.models.outreach import NONE, assign

    config = policy_config(settings)
    try:
        trials = _segments_of(day, settings)
    except PartitionNotFound as exc:
        raise PartitionNotFound(f"outreach for {day}: {exc} (score {day} first: `churn score --ds {day}`)") from None
    published = read_partition("outreach_assignments", day, settings) if day in list_partitions(
        "outreach_assignments", settings) else None
    if published is None:
        state, version = _current_policy(settings, config)
    else:
        state, version = _policy_of(published, settings, config)
    frame = assign(config, state, trials, version, seed=settings.seed).merge(
        trials, on="instance_id")
    frame["run_date"] = day
    if published is None:
        write_partitions("outreach_assignments", {day: frame}, settings)
    else:
        _require_same_assignment(day, published, frame, version)
    counts = frame["channel"].value_counts().to_dict()
    summary = {"dt": day.isoformat(), "policy_version": version, "trials": len(frame),
               "status": "assigned" if published is None else "already published (reproduced, kept)",
               "contacted": int((frame["channel"] != NONE).sum()), "holdout": int(frame["holdout"].sum()),
               "overflow": int(frame["overflow"].sum()), "by_channel": {k: int(v) for k, v in counts.items()},
               "expected_gain": float(frame["expected_gain"].sum())}
    log.info("outreach %s: %d trials, %d to contact (%s), %d held out, policy %s%s", day, len(frame),
             summary["contacted"], ", ".join(f"{k}={v}" for k, v in sorted(counts.items()) if k != NONE),
             summary["holdout"], version, "" if published is None else " (already published: kept as it was)")
    return summary


def _policy_of(published, settings: Settings, config):
    """(state, version) of the policy a published day's assignments were made with."""
    from churn.models.outreach import OutreachError, PolicyState
    from churn.models.policy_registry import PolicyRegistry

    versions = sorted(set(published["policy_version"].dropna()))
    if len(versions) > 1:
        raise OutreachError(f"outreach_assignments: one day holds rows of policy versions {versions}")
    version = versions[0] if versions else "prior"
    state = PolicyState.prior(config) if version == "prior" else PolicyRegistry(settings).load(version)[0]
    return state.with_arms(config, config.arms), version


ASSIGNMENT_COLUMNS = ("channel", "intended", "holdout", "overflow")


def _require_same_assignment(day: date, published, frame, version: str) -> None:
    """A rerun of a published day must give its rows again; otherwise nothing is written and the error says why."""
    from churn.models.outreach import OutreachError

    old = published.set_index("instance_id")[list(ASSIGNMENT_COLUMNS)]
    new = frame.set_index("instance_id")[list(ASSIGNMENT_COLUMNS)]
    gone, added = sorted(set(old.index) - set(new.index)), sorted(set(new.index) - set(old.index))
    common = old.index.intersection(new.index)
    changed = int((old.loc[common] != new.loc[common]).any(axis=1).sum())
    if gone or added or changed:
        raise OutreachError(
            f"outreach_assignments dt={day} is published (policy {version}, {len(old)} trials) and may have been "
            f"acted on: reproducing it now would change {changed} trials' assignments, add {len(added)} and drop "
            f"{len(gone)} (the scores or segments of {day}, or the channel configuration, changed since); nothing "
            "was written — a published day's assignments are kept as they were")


def learn_day(day: date, settings: Settings) -> dict:
    """Learn the outcomes known on D (one mini-batch, a new policy version) and publish ``outreach_effect`` dt=D."""
    from churn.core.warehouse import PartitionNotFound, read_partition, write_partitions
    from churn.models.outreach import OutreachError, learn
    from churn.models.outreach_effect import effect_rows
    from churn.models.policy_registry import PolicyRegistry

    config = policy_config(settings)
    when = assigned_day(day, settings)
    try:
        assignments = read_partition("outreach_assignments", when, settings)
    except PartitionNotFound:
        log.info("outreach learn %s: no assignments were made on %s; nothing to learn", day, when)
        return {"dt": day.isoformat(), "assigned_dt": when.isoformat(), "learned": 0, "status": "no assignments"}
    outcomes = read_partition("instances_modeling", day, settings)[["instance_id", "retained"]]
    joined = assignments.merge(outcomes, on="instance_id", how="inner")
    unresolved = len(assignments) - len(joined)
    if unresolved:
        log.warning("outreach learn %s: %d of %d trials assigned on %s have no outcome in instances_modeling dt=%s "
                    "(not learned)", day, unresolved, len(assignments), when, day)
    joined["converted"] = joined["retained"].astype(bool)
    registry = PolicyRegistry(settings)
    state, version = _current_policy(settings, config, also=tuple(joined["channel"].unique()))
    key = when.isoformat()
    if key in state.learned_days:
        log.warning("outreach learn %s: the outcomes of %s's assignments were already learned (policy %s); "
                    "not learned twice", day, when, version)
        status, new_version = "already learned", version
    else:
        later = [d for d in state.learned_days if d > key]
        if later:
            raise OutreachError(f"outreach learn {day}: the policy already learned later days ({later[-1]}); "
                                "sequential updates are learned in day order")
        removed = sorted(set(joined["channel"]) - set(config.arms))
        if removed:
            log.warning("outreach learn %s: channel(s) %s are no longer configured; their %d outcomes are still "
                        "learned (their posteriors are kept)", day, removed, int(joined["channel"].isin(removed).sum()))
        new_state = learn(config, state, joined, day=key)
        new_version = registry.record(new_state, key, parent=None if version == "prior" else version)
        status = "learned"
    effect = effect_rows(joined, config, when)
    write_partitions("outreach_effect", {day: effect}, settings)
    log.info("outreach learn %s: %d outcomes of %s (%s), policy %s", day, len(joined), when, status, new_version)
    return {"dt": day.isoformat(), "assigned_dt": key, "learned": len(joined) if status == "learned" else 0,
            "unresolved": unresolved, "status": status, "policy_version": new_version,
            "effect": effect[effect["segment"] == "all"].to_dict("records")}


def assign_outreach(settings: Settings, days) -> OutreachAssignSummary:
    """:func:`assign_day` for each day, in order (the CLI and the DAG's ``assign`` task)."""
    days = sorted(set(days))
    if not days:
        raise Skipped("no scored day to assign outreach for")
    return OutreachAssignSummary(assigned=json_safe([assign_day(day, settings) for day in days]))


def learn_outreach(settings: Settings, days) -> OutreachLearnSummary:
    """:func:`learn_day` for each day whose outcomes arrived, in day order (sequential updates)."""
    days = sorted(set(days))
    if not days:
        raise Skipped("no day with new outcomes to learn from")
    return OutreachLearnSummary(results=json_safe([learn_day(day, settings) for day in days]))
