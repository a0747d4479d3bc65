"""Expectations on the simulated raw data: the contract, determinism, the end of the world, the signal."""

from __future__ import annotations

import hashlib
import os
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from churn.core.contract import EVALUATIONS_SCHEMA, EVENTS_OPTIONAL, EVENTS_SCHEMA
from churn.core.feature_config import load_feature_config
from churn.core.settings import Settings
from churn.core.tables import table_location
from churn.dev.simulator import simulate

START, DAYS, PER_DAY, SEED = date(2026, 1, 5), 60, 40, 7
END = START + timedelta(days=DAYS - 1)
WORLD_END = pd.Timestamp(END + timedelta(days=1), tz="UTC")


def _all_days(start: date = START, days: int = DAYS) -> list[str]:
    return [(start + timedelta(days=i)).isoformat() for i in range(days)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    settings = Settings(warehouse=str(tmp_path_factory.mktemp("sim") / "warehouse"))
    summary = simulate(START, DAYS, PER_DAY, SEED, settings, progress=False)
    return settings, summary


@pytest.fixture(scope="module")
def evaluations(world) -> pd.DataFrame:
    return pq.read_table(table_location("evaluations", world[0])).to_pandas()


@pytest.fixture(scope="module")
def truth(world) -> pd.DataFrame:
    return pq.read_table(world[0].truth_path).to_pandas()


@pytest.fixture(scope="module")
def events(world) -> pd.DataFrame:
    frames = []
    for dt in _all_days():
        frame = pq.read_table(os.path.join(table_location("events", world[0]), f"dt={dt}", "part-00000.parquet")).to_pandas()
        frames.append(frame.assign(dt=dt))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def joined(events, evaluations, truth) -> pd.DataFrame:
    """Events with their instance's eval start, truth and day index (event UTC date - eval start)."""
    out = events.merge(evaluations[["instance_id", "eval_start_date"]], on="instance_id", how="left")
    out = out.merge(truth[["instance_id", "converts", "p_convert"]], on="instance_id", how="left")
    start = pd.to_datetime(out["eval_start_date"]).dt.tz_localize("UTC")
    out["day_index"] = (out["event_time"].dt.floor("D") - start).dt.days
    out["before_start"] = out["event_time"] < start
    return out


def _file_schema(path: str) -> pa.Schema:
    return pq.read_schema(path).remove_metadata()


def test_evaluations_schema_is_the_contract_plus_extras(world):
    schema = _file_schema(os.path.join(table_location("evaluations", world[0]), "part-00000.parquet"))
    assert list(schema)[:3] == list(EVALUATIONS_SCHEMA)  # names, types and nullability
    assert {"country", "company_size_band", "signup_channel"} <= set(schema.names[3:])


def test_events_schema_is_exactly_the_contract_in_every_partition(world):
    expected = pa.schema(list(EVENTS_SCHEMA) + list(EVENTS_OPTIONAL))
    for dt in _all_days():
        schema = _file_schema(os.path.join(table_location("events", world[0]), f"dt={dt}", "part-00000.parquet"))
        assert schema.equals(expected), (dt, schema)
    assert expected.field("event_time").type == pa.timestamp("us", tz="UTC")


def test_truth_file(truth, evaluations):
    assert list(truth.columns)[:3] == ["instance_id", "eval_start_date", "p_convert"]
    assert set(truth["instance_id"]) == set(evaluations["instance_id"])
    assert truth["p_convert"].between(0, 1).all()


def test_instances_start_every_day_fewer_on_weekends(evaluations):
    assert evaluations["instance_id"].is_unique
    assert evaluations["instance_id"].str.fullmatch(r"i-\d{8}-\d{5}").all()
    starts = pd.to_datetime(evaluations["eval_start_date"])
    assert sorted(starts.dt.date.astype(str).unique()) == _all_days()
    per_day = starts.value_counts()
    weekend = per_day[per_day.index.dayofweek >= 5].mean()
    weekday = per_day[per_day.index.dayofweek < 5].mean()
    assert weekend < 0.8 * weekday
    assert 0.8 * PER_DAY * DAYS < len(evaluations) < 1.2 * PER_DAY * DAYS


def test_a_partition_for_every_day_and_dt_is_the_utc_date_of_event_time(world, events):
    names = sorted(os.listdir(table_location("events", world[0])))
    assert names == [f"dt={d}" for d in _all_days()]
    utc_date = events["event_time"].dt.tz_convert(None).to_numpy().astype("datetime64[D]")
    partition = pd.to_datetime(events["dt"], format="%Y-%m-%d").to_numpy().astype("datetime64[D]")
    assert (utc_date == partition).all()


def test_a_day_without_events_is_an_empty_partition(tmp_path):
    settings = Settings(warehouse=str(tmp_path / "warehouse"))
    summary = simulate(START, 3, 0, SEED, settings, progress=False)
    assert summary["instances"] == 0 and summary["events"] == 0
    for dt in _all_days(START, 3):
        table = pq.read_table(os.path.join(table_location("events", settings), f"dt={dt}", "part-00000.parquet"))
        assert table.num_rows == 0
        assert table.schema.remove_metadata().equals(pa.schema(list(EVENTS_SCHEMA) + list(EVENTS_OPTIONAL)))


def test_nothing_happens_after_the_end_of_the_world(events, evaluations, truth):
    assert events["event_time"].max() < WORLD_END
    assert events["received_at"].max() < WORLD_END  # not yet arrived = not in the raw data
    assert (events["received_at"] >= events["event_time"]).all()
    merged = evaluations.merge(truth, on=["instance_id", "eval_start_date"])
    due = pd.to_datetime(merged["eval_start_date"]) + pd.to_timedelta(merged["conversion_day"].fillna(0), unit="D")
    known = merged["converts"] & (due.dt.date <= END)
    assert merged.loc[~known, "converted_date"].isna().all()
    assert (pd.to_datetime(merged.loc[known, "converted_date"]) == due[known]).all()
    assert merged["converted_date"].dropna().max() <= END
    assert (merged["converts"] & ~known).any()  # some conversions are still in the future


def test_conversion_rate_and_timing(truth):
    assert 0.15 <= truth["converts"].mean() <= 0.30
    days = truth.loc[truth["converts"], "conversion_day"]
    assert days.between(0, 45).all()
    assert 0.05 < (days >= 30).mean() < 0.30  # some converters fall outside a 30-day label window


def test_true_probability_ranks_realised_conversions(evaluations, truth):
    merged = evaluations.merge(truth[["instance_id", "p_convert", "converts"]], on="instance_id")
    observed = pd.to_datetime(merged["eval_start_date"]).dt.date <= END - timedelta(days=45)
    realised = merged.loc[observed, "converted_date"].notna()
    auc = roc_auc_score(realised, merged.loc[observed, "p_convert"])
    assert 0.75 <= auc <= 0.93, auc
    assert 0.78 <= roc_auc_score(truth["converts"], truth["p_convert"]) <= 0.92


def test_event_types_known_and_unknown(events):
    config = load_feature_config(Settings())
    seen = set(events["event_type"].unique())
    assert config.known_event_types <= seen  # every configured type occurs
    unknown = events.loc[~events["event_type"].isin(config.known_event_types), "event_type"]
    assert {"page_loaded", "settings_changed"} <= set(unknown)
    assert 0.02 < len(unknown) / len(events) < 0.15
    assert set(events["platform"]) == {"web", "mobile"}


def test_week1_volume_and_users(joined, evaluations):
    cutoff = pd.to_datetime(joined["eval_start_date"]).dt.tz_localize("UTC") + pd.Timedelta(days=7)
    week1 = joined[joined["day_index"].between(0, 6) & (joined["received_at"] < cutoff)]
    full = pd.to_datetime(evaluations["eval_start_date"]).dt.date <= END - timedelta(days=7)
    per_instance = week1.groupby("instance_id").size().reindex(evaluations.loc[full, "instance_id"], fill_value=0)
    assert 100 <= per_instance.mean() <= 220, per_instance.mean()
    users = week1.groupby("instance_id")["user_id"].nunique()
    assert 1 <= users.min() and users.max() <= 30 and 2 <= users.mean() <= 8
    assert week1.groupby("instance_id")["day_index"].nunique().mean() > 3


def test_weekend_and_time_of_day_seasonality(events):
    weekday = events["event_time"].dt.dayofweek
    per_day = events.groupby(events["event_time"].dt.date).size()
    is_weekend = pd.to_datetime(per_day.index).dayofweek >= 5
    assert per_day[is_weekend].mean() < 0.6 * per_day[~is_weekend].mean()
    assert weekday.nunique() == 7
    by_hour = events["event_time"].dt.hour.value_counts()
    assert by_hour.max() > 1.8 * by_hour.min()


def test_a_few_pre_signup_events_just_before_eval_start(joined):
    pre = joined[joined["before_start"]]
    assert 0 < len(pre) < 0.01 * len(joined)
    start = pd.to_datetime(pre["eval_start_date"]).dt.tz_localize("UTC")
    assert ((start - pre["event_time"]) < pd.Timedelta(hours=12)).all()


def test_late_arrivals(events):
    delay = events["received_at"] - events["event_time"]
    late = delay > pd.Timedelta(hours=1)
    assert 0.01 < late.mean() < 0.08
    assert delay.max() <= pd.Timedelta(days=2)
    assert (delay < pd.Timedelta(minutes=10)).mean() > 0.9


def test_week2_activity_leaks_the_outcome(joined):
    """The leak trap: week-2 events separate converters far better than week 1 does."""
    per = joined[joined["day_index"].between(0, 13)].groupby(["instance_id", "converts"])["day_index"]
    week1 = per.apply(lambda d: (d < 7).sum()).reset_index(name="n")
    week2 = per.apply(lambda d: (d >= 7).sum()).reset_index(name="n")
    ratio1 = week1.groupby("converts")["n"].mean()
    ratio2 = week2.groupby("converts")["n"].mean()
    assert ratio2[True] / ratio2[False] > 2 * ratio1[True] / ratio1[False]


def test_week1_activity_carries_signal(joined, truth):
    week1 = joined[joined["day_index"].between(0, 6)].groupby("instance_id").size()
    frame = truth.set_index("instance_id").join(week1.rename("w1")).fillna({"w1": 0})
    assert frame["w1"].corr(frame["p_convert"], method="spearman") > 0.3


def _digests(root: str) -> dict[str, str]:
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            out[os.path.relpath(path, root)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    runs = {}
    for label, seed in (("a", 11), ("b", 11), ("c", 12)):
        settings = Settings(warehouse=str(tmp_path / label))
        simulate(START, 5, 10, seed, settings, progress=False)
        runs[label] = _digests(settings.warehouse)
    assert len(runs["a"]) == 5 + 2  # 5 event partitions, evaluations, truth
    assert runs["a"] == runs["b"]
    assert runs["a"].keys() == runs["c"].keys()
    assert all(runs["a"][k] != runs["c"][k] for k in runs["a"])


def test_refuses_to_overwrite_unless_asked(tmp_path):
    settings = Settings(warehouse=str(tmp_path / "warehouse"))
    simulate(START, 4, 5, SEED, settings, progress=False)
    with pytest.raises(FileExistsError, match=str(table_location("evaluations", settings))):
        simulate(START, 2, 5, SEED, settings, progress=False)
    summary = simulate(START, 2, 5, SEED, settings, progress=False, overwrite=True)
    assert summary["days"] == 2
    assert sorted(os.listdir(table_location("events", settings))) == [f"dt={d}" for d in _all_days(START, 2)]  # no stale days


def test_instances_and_events_are_sorted(events):
    day = events[events["dt"] == _all_days()[30]]
    keys = list(zip(day["instance_id"], day["event_time"], strict=True))
    assert keys == sorted(keys)


def test_summary(world, evaluations, events):
    _, summary = world
    assert summary["instances"] == len(evaluations)
    assert summary["events"] == len(events)
    assert summary["end"] == END.isoformat()
    assert isinstance(datetime.fromisoformat(summary["start"]), datetime)
    assert np.isclose(summary["conversion_rate_known"], evaluations["converted_date"].notna().mean(), atol=1e-3)
