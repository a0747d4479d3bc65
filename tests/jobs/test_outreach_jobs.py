"""The outreach jobs on published tables: assignments after scoring, learning when outcomes are known, the
policy registry's versions, and the bad inputs the issue names."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from churn.core.tables import PREDICTIONS_COLUMNS
from churn.core.warehouse import PartitionNotFound, list_partitions, read_partition, write_partition
from churn.dev.synthetic import write_w1
from churn.jobs.outreach import assign_day, assigned_day, learn_day
from churn.models.outreach import OutreachError
from churn.models.policy_registry import PolicyRegistry

DAY = date(2026, 4, 10)


def _score(settings, day: date, n: int = 600, seed: int = 2) -> pd.DataFrame:
    """instances_w1 dt=day and predictions for it (the columns scoring writes; p_retained from the rank)."""
    w1 = write_w1(settings, day, n, seed=seed)
    rng = np.random.default_rng(seed)
    predictions = pd.DataFrame({name: [None] * n for name, _ in PREDICTIONS_COLUMNS})
    predictions["instance_id"] = w1["instance_id"]
    predictions["eval_start_date"] = w1["eval_start_date"]
    predictions["p_retained"] = rng.uniform(0.02, 0.9, n)
    predictions["model_version"], predictions["run_date"] = "v-test", day
    for name, kind in PREDICTIONS_COLUMNS:
        if kind in ("int", "bigint") and predictions[name].isna().all():
            predictions[name] = 0
        if kind == "double" and predictions[name].isna().all():
            predictions[name] = 0.0
    write_partition("instances_w1_scored", day, predictions, settings)
    return w1


def _outcomes(settings, day: date, w1: pd.DataFrame, rate: float = 0.3) -> date:
    """instances_modeling dt = the day the assigned trials' outcomes are known."""
    known = day + timedelta(days=settings.label_window_days - settings.first_week_days)
    frame = w1.copy()
    frame.insert(2, "retained", (np.random.default_rng(5).random(len(frame)) < rate).astype(np.int32))
    write_partition("instances_modeling", known, frame, settings)
    return known


def test_assignments_need_the_days_scores(warehouse):
    with pytest.raises(PartitionNotFound, match=r"outreach for 2026-04-10: .* \(score 2026-04-10 first"):
        assign_day(DAY, warehouse)


def test_a_day_is_assigned_within_capacities_and_a_rerun_reproduces_it(warehouse):
    _score(warehouse, DAY)
    first = assign_day(DAY, warehouse)
    table = read_partition("outreach_assignments", DAY, warehouse)
    assert len(table) == 600 and first["policy_version"] == "prior"
    assert set(table["channel"]) <= {"none", "email", "chat", "push", "call"}
    assert (table["channel"] == "call").sum() <= 30 and (table["channel"] == "email").sum() <= 500
    assert table["holdout"].sum() == first["holdout"] > 0
    again = assign_day(DAY, warehouse)
    pd.testing.assert_frame_equal(read_partition("outreach_assignments", DAY, warehouse), table)
    assert again == first | {"status": "already published (reproduced, kept)"}


def test_a_published_days_assignments_are_never_rewritten(warehouse):
    """The CRM may have acted on day D and learn joins outcomes to it: after the policy learned (a new version), a
    rerun of D reproduces D with the version D was made with; once D's inputs changed, it refuses and writes nothing."""
    w1 = _score(warehouse, DAY)
    assign_day(DAY, warehouse)
    table = read_partition("outreach_assignments", DAY, warehouse)
    learned = learn_day(_outcomes(warehouse, DAY, w1), warehouse)
    assert learned["policy_version"] != "prior"
    rerun = assign_day(DAY, warehouse)
    assert rerun["policy_version"] == "prior" and rerun["status"].startswith("already published")
    pd.testing.assert_frame_equal(read_partition("outreach_assignments", DAY, warehouse), table)
    _score(warehouse, DAY, seed=9)  # D's scores rebuilt: other trials, other risks
    with pytest.raises(OutreachError, match=r"dt=2026-04-10 is published \(policy prior, 600 trials\).*nothing was written"):
        assign_day(DAY, warehouse)
    pd.testing.assert_frame_equal(read_partition("outreach_assignments", DAY, warehouse), table)


def test_outcomes_are_learned_once_as_a_new_policy_version_and_the_effect_is_published(warehouse):
    w1 = _score(warehouse, DAY)
    assign_day(DAY, warehouse)
    known = _outcomes(warehouse, DAY, w1)
    assert assigned_day(known, warehouse) == DAY
    learned = learn_day(known, warehouse)
    assert learned["status"] == "learned" and learned["learned"] == 600
    registry = PolicyRegistry(warehouse)
    state, metadata = registry.current()
    assert metadata["version"] == learned["policy_version"] and state.learned_days == [DAY.isoformat()]
    effect = read_partition("outreach_effect", known, warehouse)
    overall = effect[effect["segment"] == "all"].set_index("channel")
    assert overall["contacted"].sum() + overall["holdout"].sum() <= 600 and (overall["holdout"] > 0).any()
    again = learn_day(known, warehouse)  # the same outcomes again: counted once
    assert again["status"] == "already learned" and again["learned"] == 0
    assert len(registry.history()) == 1
    # the next day's assignments use the learned version (and a new holdout draw)
    _score(warehouse, DAY + timedelta(days=1), seed=3)
    assert assign_day(DAY + timedelta(days=1), warehouse)["policy_version"] == learned["policy_version"]


def test_days_are_learned_in_order(warehouse):
    for k, seed in ((0, 2), (1, 3)):
        w1 = _score(warehouse, DAY + timedelta(days=k), seed=seed)
        assign_day(DAY + timedelta(days=k), warehouse)
        _outcomes(warehouse, DAY + timedelta(days=k), w1)
    later = DAY + timedelta(days=1 + warehouse.label_window_days - warehouse.first_week_days)
    learn_day(later, warehouse)
    with pytest.raises(OutreachError, match="already learned later days"):
        learn_day(later - timedelta(days=1), warehouse)


def test_a_day_without_assignments_learns_nothing(warehouse):
    result = learn_day(DAY, warehouse)
    assert result["status"] == "no assignments" and list_partitions("outreach_effect", warehouse) == []


def test_a_removed_channel_with_pending_outcomes_is_still_learned(warehouse, monkeypatch):
    from churn.core.settings import Settings

    w1 = _score(warehouse, DAY)
    # a free call: whatever the day's draw, it is worth something for some trials, so calls are pending
    monkeypatch.setenv("CHURN_OUTREACH_CHANNELS", "email:0.5:500,chat:3:60,push:0.1:300,call:0:30")
    assert assign_day(DAY, Settings())["by_channel"].get("call", 0) > 0
    known = _outcomes(warehouse, DAY, w1)
    monkeypatch.setenv("CHURN_OUTREACH_CHANNELS", "email:0.5:500,chat:3:60,push:0.1:300")  # call removed
    result = learn_day(known, Settings())
    assert result["status"] == "learned"
    state, _ = PolicyRegistry(warehouse).current()
    assert "call" in state.posteriors  # kept: it may come back, and its outcomes were real


def test_the_tables_answer_athena_sql(warehouse):
    from churn.ops.query import run_query

    w1 = _score(warehouse, DAY)
    assign_day(DAY, warehouse)
    learn_day(_outcomes(warehouse, DAY, w1), warehouse)
    counts = run_query("SELECT channel, COUNT(*) AS n FROM outreach_assignments WHERE dt = DATE '2026-04-10' "
                       "GROUP BY channel ORDER BY channel", warehouse)
    assert int(counts["n"].sum()) == 600 and "email" in set(counts["channel"])
    effect = run_query("SELECT channel, uplift, uplift_low, uplift_high FROM outreach_effect "
                       "WHERE segment = 'all'", warehouse)
    assert len(effect) >= 1 and (effect["uplift_low"] <= effect["uplift_high"]).all()


def test_the_summaries_are_json_for_xcom(warehouse):
    """What the DAG's tasks return: strict JSON (no dates, no NaN) — XCom refuses anything else."""
    import json

    from churn.jobs.outreach import assign_outreach, learn_outreach

    w1 = _score(warehouse, DAY, n=40)  # small: some channel has no holdout trial, its interval is NaN
    json.dumps(assign_outreach(warehouse, [DAY]).as_dict(), allow_nan=False)
    json.dumps(learn_outreach(warehouse, [_outcomes(warehouse, DAY, w1)]).as_dict(), allow_nan=False)
