"""The demo's incident: a tracking bug swallows one event type for some days; nothing else changes."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from churn.core.settings import Settings
from churn.dev.simulator import TrackingOutage, simulate

START = date(2026, 1, 1)


def _events(tmp_path, outage):
    settings = Settings(_env_file=None, warehouse=str(tmp_path))
    simulate(START, 20, 30, 5, settings, progress=False, outage=outage)
    events = pd.read_parquet(tmp_path / "raw" / "events")
    events["day"] = events["event_time"].dt.date
    return events, pd.read_parquet(tmp_path / "raw" / "evaluations")


def test_an_outage_swallows_its_event_type_on_its_days_only(tmp_path):
    outage = TrackingOutage("issue_completed", START + timedelta(days=15), 4)
    events, evaluations = _events(tmp_path / "a", outage)
    clean, clean_evaluations = _events(tmp_path / "b", None)
    in_outage = events["day"].between(outage.first_day, outage.first_day + timedelta(days=3))
    assert not ((events["event_type"] == "issue_completed") & in_outage).any()
    assert ((clean["event_type"] == "issue_completed") & in_outage).sum() > 50  # there was something to lose
    before = events["day"] < outage.first_day
    pd.testing.assert_frame_equal(events[before].reset_index(drop=True), clean[clean["day"] < outage.first_day]
                                  .reset_index(drop=True))
    pd.testing.assert_frame_equal(evaluations, clean_evaluations)  # outcomes do not change


def test_an_outage_of_an_unknown_event_type_is_refused():
    with pytest.raises(ValueError, match="unknown event type 'issue_done'"):
        TrackingOutage("issue_done", START, 2)
