"""Daily scoring: train/serve parity, batch invariance, reasons, and loud failures that publish nothing."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from churn.core import storage
from churn.core.settings import DEFAULT_FEATURE_CONFIG, Settings, join
from churn.core.tables import table, table_location
from churn.core.warehouse import (
    PartitionNotFound,
    TableWriteError,
    current_snapshot_id,
    list_partitions,
    partition_snapshot,
    read_partition,
    write_partition,
)
from churn.dev.synthetic import write_w1
from churn.jobs import score
from churn.models.registry import IntegrityError, NoChampion, Registry
from churn.models.score import N_REASONS, score_frame
from churn.models.transform import SchemaMismatch
from tests.models.conftest import RUN_DATE

SCORE_DAY = RUN_DATE + timedelta(days=1)


def _validation_rows(env) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The validation rows as a feature frame (no label), and the registry's stored scores for them."""
    registry = Registry(env.settings)
    scores = pq.read_table(io.BytesIO(registry.read_artifact(env.result["version"], "validation_scores.parquet")))
    scores = scores.to_pandas()
    rows = env.data.set_index("instance_id").loc[scores["instance_id"]].reset_index()
    return rows.drop(columns=["retained", "true_p"]), scores


def test_scores_equal_the_training_evaluation_and_ignore_the_batch(s3):
    """Parity on S3: the champion scores the validation rows exactly as the training run did."""
    rows, scores = _validation_rows(s3)
    table = "instances_w1"
    write_partition(table, SCORE_DAY, rows, s3.settings)
    result = score(Settings(), [SCORE_DAY])  # CHURN_WAREHOUSE=s3://...
    assert result.rows == len(rows) and result.model_version == s3.result["version"]
    assert result.scored[0]["table"] == "instances_w1_scored"
    assert table_location("instances_w1_scored", s3.settings).startswith("s3://")
    out = read_partition("instances_w1_scored", SCORE_DAY, s3.settings)
    assert list(out["instance_id"]) == list(rows["instance_id"])
    assert np.array_equal(out["p_retained"].to_numpy(), scores["p_served"].to_numpy())

    # another day, a different batch: a reversed subset with rows from elsewhere mixed in
    other_day = SCORE_DAY + timedelta(days=1)
    extra = write_w1(s3.settings, other_day, 50, seed=44)
    picked = rows.iloc[[5, 900, 17, 2000, 33]].iloc[::-1]
    write_partition(table, other_day, pd.concat([extra.iloc[:20], picked, extra.iloc[20:]]), s3.settings)
    score(Settings(), [other_day])
    again = read_partition("instances_w1_scored", other_day, s3.settings).set_index("instance_id")
    first = out.set_index("instance_id").loc[picked["instance_id"]]
    # per-trial values; at_risk / prediction_retained / risk_rank rank the day's cohort (objective top:0.2)
    columns = ["p_retained", "risk_band"] + [
        f"reason_{k}_{part}" for k in range(1, N_REASONS + 1) for part in ("feature", "contribution", "text")]
    pd.testing.assert_frame_equal(again.loc[picked["instance_id"], columns], first[columns])


def test_output_columns_bands_and_threshold(s3):
    settings = s3.settings
    day = SCORE_DAY + timedelta(days=5)
    frame = write_w1(settings, day, 300, seed=8)
    score(settings, [day])
    out = read_partition(table("instances_w1_scored"), day, settings)
    assert list(out.columns[:-1]) == [
        "instance_id", "eval_start_date", "p_retained", "prediction_retained", "risk_band",
        "reason_1_feature", "reason_1_contribution", "reason_2_feature", "reason_2_contribution",
        "reason_3_feature", "reason_3_contribution", "model_version", "run_date", "features_snapshot_id",
        "reason_1_text", "reason_2_text", "reason_3_text", "at_risk", "risk_rank"]
    model, meta = Registry(settings).champion()
    written = partition_snapshot("instances_w1", day, settings)["snapshot_id"]
    assert (out["features_snapshot_id"] == written).all()  # which features were scored, exactly
    assert (out["eval_start_date"] == frame["eval_start_date"]).all()
    assert (out["run_date"] == day).all() and (out["model_version"] == meta["version"]).all()
    assert out["at_risk"].sum() == int(np.ceil(0.2 * len(out)))  # the default objective top:0.2
    assert out.loc[out["at_risk"] == 1, "p_retained"].max() <= out.loc[out["at_risk"] == 0, "p_retained"].min()
    assert (out["prediction_retained"] == 1 - out["at_risk"]).all()
    assert sorted(out["risk_rank"]) == list(range(1, len(out) + 1))
    assert out.loc[out["risk_rank"] == 1, "p_retained"].iloc[0] == out["p_retained"].min()
    edges = np.asarray(meta["band_edges"])
    assert (out["risk_band"] == 1 + np.searchsorted(edges, out["p_retained"], side="right")).all()
    lowest, highest = out.nsmallest(30, "p_retained"), out.nlargest(30, "p_retained")
    assert lowest["risk_band"].mean() < highest["risk_band"].mean()
    names = set(meta_feature["name"] for meta_feature in meta["features"])
    reasons = out["reason_1_feature"].dropna()
    assert len(reasons) > 0.9 * len(out) and set(reasons) <= names
    assert (out["reason_1_contribution"].dropna() < 0).all()
    assert (out["reason_1_contribution"] <= out["reason_2_contribution"]).where(out["reason_2_feature"].notna(), True).all()
    # each reason also reads like a sentence: the feature's label, the trial's own value, what converters did
    facts = {f["name"]: f for f in meta["features"]}
    for _, row in out.dropna(subset=["reason_1_feature"]).head(50).iterrows():
        fact, value = facts[row["reason_1_feature"]], frame.set_index("instance_id").loc[row["instance_id"],
                                                                                         row["reason_1_feature"]]
        assert fact["label"] in row["reason_1_text"], row["reason_1_text"]
        assert row["reason_1_text"].endswith(f"(converting trials: median {fact['converted_median']:.{0 if float(fact['converted_median']).is_integer() else 1}f})")
        if fact["dtype"] == "int64" and value == 0:
            assert row["reason_1_text"].startswith(f"no {fact['label']} in week 1")
    assert out["reason_1_text"].isna().equals(out["reason_1_feature"].isna())


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda f: f.drop(columns="number_of_invites"), r"instances_w1 dt=2025-06-03: .*missing: \['number_of_invites'\]"),
        (lambda f: f.assign(plan_tier=3), r"instances_w1 dt=2025-06-03: .*undeclared: \['plan_tier'\]"),
        (lambda f: f.assign(w1_active_days=f["w1_active_days"] + 0.5), r"instances_w1 dt=2025-06-03\.w1_active_days: a value does not fit"),
    ],
    ids=["missing", "extra", "dtype"],
)
def test_rows_unlike_the_declaration_are_refused_at_write(local_copy, change, message):
    settings = local_copy.settings
    frame = write_w1(settings, SCORE_DAY, 40)
    before = current_snapshot_id("instances_w1", settings)
    with pytest.raises(TableWriteError, match=message):
        write_partition(table("instances_w1"), SCORE_DAY, change(frame), settings)
    assert current_snapshot_id("instances_w1", settings) == before


def test_features_the_champion_does_not_know_are_a_clear_error_and_publish_nothing(local_copy, tmp_path):
    """A feature added to the configuration after training: the table gains the column, scoring refuses."""
    config = tmp_path / "features.yaml"
    config.write_text(DEFAULT_FEATURE_CONFIG.read_text().replace(
        "count_features:\n", "count_features:\n  pages_published: [page_published]\n", 1))
    settings = local_copy.settings.model_copy(update={"feature_config": str(config)})
    frame = write_w1(local_copy.settings, SCORE_DAY, 40)
    write_partition(table("instances_w1"), SCORE_DAY, frame.assign(pages_published=2), settings)
    with pytest.raises(SchemaMismatch, match=r"unexpected feature\(s\) \['pages_published'\]"):
        score(settings, [SCORE_DAY])
    assert list_partitions(table("instances_w1_scored"), settings) == []


def test_a_run_of_several_days_loads_the_champion_once(local_copy, monkeypatch):
    settings = local_copy.settings
    days = [SCORE_DAY, SCORE_DAY + timedelta(days=1), SCORE_DAY + timedelta(days=2)]
    for n, day in enumerate(days):
        write_w1(settings, day, 30 + n, seed=n)
    loads = []
    original = Registry.champion
    monkeypatch.setattr(Registry, "champion", lambda self: loads.append(1) or original(self))
    summary = score(settings, days)
    assert loads == [1] and summary.days == days and summary.rows == 30 + 31 + 32


def test_missing_champion_and_missing_partition_are_clear_errors(empty_local, local_copy):
    write_w1(empty_local, SCORE_DAY, 10)
    with pytest.raises(NoChampion, match="no champion model"):
        score(empty_local, [SCORE_DAY])
    with pytest.raises(PartitionNotFound, match="dt=2030-01-01"):
        score(local_copy.settings, [date(2030, 1, 1)])


def _model_file(settings, version) -> Path:
    meta = Registry(settings).metadata(version)
    name = next(n for n in meta["model_files"] if n.startswith("model"))
    return Path(Registry(settings).artifact_path(version, name))


@pytest.mark.parametrize("damage", ["flip", "truncate", "metadata", "delete"])
def test_damaged_champion_fails_loudly_and_keeps_previous_predictions(local_copy, damage):
    settings = local_copy.settings
    version = local_copy.result["version"]
    write_w1(settings, SCORE_DAY, 60)
    score(settings, [SCORE_DAY])
    before = read_partition("instances_w1_scored", SCORE_DAY, settings)
    snapshot = current_snapshot_id("instances_w1_scored", settings)

    target = _model_file(settings, version)
    if damage == "flip":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
        expected = "altered"
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:-10])
        expected = "truncated"
    elif damage == "metadata":
        meta_path = Path(Registry(settings).artifact_path(version, "metadata.json"))
        meta = json.loads(meta_path.read_text())
        meta["threshold"] = 0.01
        meta_path.write_text(json.dumps(meta))
        expected = "altered after registration"
    else:
        target.unlink()
        expected = "missing"
    write_w1(settings, SCORE_DAY, 80, seed=99)  # new data arrives for the same day
    with pytest.raises(IntegrityError, match=expected) as info:
        score(settings, [SCORE_DAY])
    assert version in str(info.value)
    pd.testing.assert_frame_equal(read_partition("instances_w1_scored", SCORE_DAY, settings), before)
    assert current_snapshot_id("instances_w1_scored", settings) == snapshot  # nothing was committed
    with pytest.raises(IntegrityError):
        score(settings, [SCORE_DAY + timedelta(days=1)])
    assert list_partitions(table("instances_w1_scored"), settings) == [SCORE_DAY]


def test_registry_never_reads_pickles(local_copy):
    """Every stored artifact is JSON, UBJSON, Parquet or HTML; loading never goes through pickle."""
    settings = local_copy.settings
    meta = Registry(settings).metadata(local_copy.result["version"])
    for name in meta["artifacts"]:
        data = storage.read_bytes(join(Registry(settings).version_path(meta["version"]), name), settings)
        assert not data.startswith(b"\x80"), name  # pickle protocol 2+ header
        assert name.rsplit(".", 1)[-1] in {"json", "ubj", "parquet", "html"}
    import pickle

    originals = pickle.loads, pickle.load, pickle.Unpickler
    try:
        pickle.loads = pickle.load = pickle.Unpickler = None  # any use while loading would raise TypeError
        model, _ = Registry(settings).champion()
    finally:
        pickle.loads, pickle.load, pickle.Unpickler = originals
    assert model.version == local_copy.result["version"]


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda f: pd.concat([f, f.iloc[[3]]], ignore_index=True), r"instances_w1 dt=2025-06-03\.instance_id: 2 rows share"),
        (lambda f: f.assign(number_of_issues=f["number_of_issues"].where(f.index != 5, -2)),
         r"instances_w1 dt=2025-06-03\.number_of_issues: 1 rows out of range"),
        (lambda f: f.assign(eval_start_weekday=f["eval_start_weekday"].where(f.index != 2, 9)),
         r"instances_w1 dt=2025-06-03\.eval_start_weekday: 1 rows out of range"),
        (lambda f: f.assign(hours_to_first_key_action=f["hours_to_first_key_action"].where(f.index != 1, 500.0)),
         r"instances_w1 dt=2025-06-03\.hours_to_first_key_action: 1 rows out of range"),
    ],
    ids=["duplicate", "negative_count", "weekday", "hours"],
)
def test_duplicate_or_impossible_feature_rows_never_reach_a_prediction(local_copy, change, message):
    from churn.models.score import FeatureRowsError

    settings = local_copy.settings
    frame = write_w1(settings, SCORE_DAY, 40)
    write_partition(table("instances_w1"), SCORE_DAY, change(frame), settings)
    with pytest.raises(FeatureRowsError, match=message):
        score(settings, [SCORE_DAY])
    assert list_partitions(table("instances_w1_scored"), settings) == []


@pytest.mark.parametrize(("objective", "flagged"), [("top:7", 7), ("top:0.1", 30), ("f2", None)])
def test_capacity_objectives_flag_the_riskiest_of_each_day(local_copy, objective, flagged):
    """A sales team can call only so many: top:N flags exactly the N lowest p_retained of the day."""
    model, _ = Registry(local_copy.settings).champion()
    model.objective = objective
    frame = write_w1(local_copy.settings, SCORE_DAY + timedelta(days=9), 300, seed=4)
    out = score_frame(model, frame, SCORE_DAY, reasons=False).to_pandas()
    if flagged is None:
        assert (out["at_risk"] == (out["p_retained"] < model.threshold)).all()
        return
    assert out["at_risk"].sum() == flagged
    assert set(out.loc[out["at_risk"] == 1, "risk_rank"]) == set(range(1, flagged + 1))
    assert out.loc[out["at_risk"] == 1, "p_retained"].max() <= out.loc[out["at_risk"] == 0, "p_retained"].min()
