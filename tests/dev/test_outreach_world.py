"""The simulated world's response to outreach (issue 13): true probabilities under every channel in the truth
file, and outcomes resolved from the channel each trial was given."""

from __future__ import annotations

import io
from datetime import date

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from churn.core import storage
from churn.core.settings import Settings, join
from churn.core.tables import table_location
from churn.dev.simulator import OUTREACH_EFFECTS, outreach_probabilities, resolve_outreach, simulate

START, DAYS, PER_DAY, SEED = date(2026, 1, 5), 60, 40, 3


@pytest.fixture()
def world(tmp_path):
    settings = Settings(warehouse=str(tmp_path / "warehouse"), _env_file=None)
    simulate(START, DAYS, PER_DAY, SEED, settings, progress=False)
    return settings


def _truth(settings) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(storage.read_bytes(join(settings.truth_path, "part-00000.parquet"),
                                                       settings))).to_pandas()


def _evaluations(settings) -> pd.DataFrame:
    return pq.read_table(table_location("evaluations", settings)).to_pandas().set_index("instance_id")


def test_effects_are_largest_for_undecided_trials_and_one_channel_hurts_a_segment():
    p = np.array([0.02, 0.5, 0.98, 0.5, 0.5])
    band = np.array([3, 3, 3, 0, 3])
    under = outreach_probabilities(p, band, np.zeros(5))
    call_gain = under["call"] - p
    assert call_gain[1] > 5 * max(call_gain[0], call_gain[2])  # swing trials gain most
    assert call_gain[3] < 0  # a call puts a small team off
    assert (under["push"] < p).all()  # push without mobile use annoys


def test_the_truth_holds_every_channel_and_the_no_contact_outcome_is_unchanged(world):
    truth = _truth(world)
    assert {f"p_{c}" for c in OUTREACH_EFFECTS} <= set(truth.columns)
    assert ((truth["chance"] < truth["p_convert"]) == truth["converts"]).all()


def test_resolving_gives_each_trial_the_outcome_of_its_channel_and_is_idempotent(world):
    truth = _truth(world).set_index("instance_id")
    before = _evaluations(world)
    cohort = truth[truth["eval_start_date"] == pd.Timestamp(START + pd.Timedelta(days=10)).date()].index
    assignments = pd.DataFrame({"instance_id": cohort, "channel": "call"})
    summary = resolve_outreach(assignments, world)
    after = _evaluations(world)
    expected = truth.loc[cohort, "chance"] < truth.loc[cohort, "p_call"]
    assert (after.loc[cohort, "converted_date"].notna() == expected).all()
    assert summary["converted"] == int(expected.sum()) and summary["contacted"] == len(cohort)
    others = after.index.difference(cohort)
    pd.testing.assert_series_equal(after.loc[others, "converted_date"], before.loc[others, "converted_date"])
    resolve_outreach(assignments, world)
    pd.testing.assert_frame_equal(_evaluations(world), after)  # resolving again changes nothing
    resolve_outreach(assignments.assign(channel="none"), world)
    pd.testing.assert_frame_equal(_evaluations(world), before)  # `none` restores the uncontacted outcome


def test_unknown_channels_and_trials_are_named(world):
    with pytest.raises(ValueError, match=r"channel\(s\) \['fax'\] are not simulated"):
        resolve_outreach(pd.DataFrame({"instance_id": ["x"], "channel": ["fax"]}), world)
    with pytest.raises(ValueError, match=r"1 instance_id\(s\) are not simulated trials, e.g. \['nope'\]"):
        resolve_outreach(pd.DataFrame({"instance_id": ["nope"], "channel": ["call"]}), world)
