"""Monitoring: realised performance of stored predictions once outcomes arrive, and drift of today's features."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlglot
from sklearn.metrics import log_loss, roc_auc_score
from sqlglot import exp

from churn.settings import SQL_DIR
from churn.warehouse import read_partition, write_partition
from models.monitor import (
    DRIFT_SCHEMA,
    DRIFT_TABLE,
    PERFORMANCE_SCHEMA,
    PERFORMANCE_TABLE,
    SCORE_FEATURE,
    NothingToMonitor,
    monitor_day,
    psi,
)
from models.registry import Registry
from models.score import score_partition
from tests.models.conftest import RUN_DATE
from tests.models.synthetic import write_w1

SCORED_DT = RUN_DATE + timedelta(days=1)  # the cohort's first week ended: scored that day
OUTCOME_DT = SCORED_DT + timedelta(days=30 - 7)  # its outcomes became known label_window days after start


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(0)
    reference = rng.poisson(5, 20_000).astype(float)
    assert psi(reference, rng.poisson(5, 5_000).astype(float)) < 0.02
    assert psi(reference, rng.poisson(9, 5_000).astype(float)) > 0.25
    with_nulls = rng.poisson(5, 5_000).astype(float)
    with_nulls[:2_000] = np.nan  # nulls are a bin of their own: 40% nulls is a shift
    assert psi(reference, with_nulls) > 0.25
    assert np.isnan(psi(reference, np.array([])))


def _outcomes_for(settings, scored, shuffle: bool, rng) -> None:
    """instances_modeling dt=OUTCOME_DT: the scored cohort's labels (drawn from p_retained) plus unscored rows."""
    frame = scored[["instance_id", "eval_start_date"]].copy()
    labels = (rng.uniform(size=len(scored)) < scored["p_retained"].to_numpy()).astype(np.int32)
    frame["retained"] = rng.permutation(labels) if shuffle else labels
    extra = frame.head(20).assign(instance_id=lambda f: "never-scored-" + f["instance_id"])
    write_partition(settings.feature_table_path("instances_modeling"), OUTCOME_DT,
                    pd.concat([frame, extra], ignore_index=True), settings)


def test_realised_performance_joins_outcomes_to_the_predictions_made_a_week_in(local_copy):
    settings, rng = local_copy.settings, np.random.default_rng(3)
    write_w1(settings, SCORED_DT, 400)
    score_partition(SCORED_DT, settings)
    scored = read_partition(settings.predictions_table_path(), SCORED_DT, settings)
    _outcomes_for(settings, scored, shuffle=False, rng=rng)

    result = monitor_day(OUTCOME_DT, settings)
    row = read_partition(settings.monitoring_table_path(PERFORMANCE_TABLE), OUTCOME_DT, settings).iloc[0]
    labels = read_partition(settings.feature_table_path("instances_modeling"), OUTCOME_DT, settings)
    joined = labels.merge(scored, on="instance_id")
    assert row["model_version"] == local_copy.result["version"]
    assert (row["labelled_rows"], row["scored_rows"]) == (420, 400)
    assert str(row["scored_dt"]) == SCORED_DT.isoformat()
    assert row["roc_auc"] == pytest.approx(roc_auc_score(joined["retained"], joined["p_retained"]))
    assert row["log_loss"] == pytest.approx(log_loss(joined["retained"], joined["p_retained"]))
    decided = joined["prediction_retained"] == 1
    assert row["precision"] == pytest.approx((joined["retained"][decided] == 1).mean())
    assert row["validation_roc_auc"] == pytest.approx(local_copy.result["metrics"]["roc_auc"])
    assert row["alert"] is None and result["performance"]["scored_rows"] == 400
    # outcomes but no scoring population today: performance only, no drift partition
    assert "drift" not in result


def test_a_model_that_stopped_ranking_raises_an_alert(local_copy, caplog):
    settings = local_copy.settings
    write_w1(settings, SCORED_DT, 400)
    score_partition(SCORED_DT, settings)
    scored = read_partition(settings.predictions_table_path(), SCORED_DT, settings)
    _outcomes_for(settings, scored, shuffle=True, rng=np.random.default_rng(4))
    with caplog.at_level("WARNING", logger="churn.monitor"):
        result = monitor_day(OUTCOME_DT, settings)
    row = read_partition(settings.monitoring_table_path(PERFORMANCE_TABLE), OUTCOME_DT, settings).iloc[0]
    assert row["roc_auc"] < settings.promotion_auc_floor
    assert "floor" in row["alert"] and any("floor" in a for a in result["alerts"])
    assert "realised AUC" in caplog.text


def test_drift_is_small_for_the_training_population_and_flags_a_shifted_feature(local_copy):
    settings = local_copy.settings
    champion = Registry(settings).alias("champion")["version"]
    write_w1(settings, SCORED_DT, 1_000)
    score_partition(SCORED_DT, settings)
    result = monitor_day(SCORED_DT, settings)
    drift = read_partition(settings.monitoring_table_path(DRIFT_TABLE), SCORED_DT, settings).set_index("feature")
    features = [f["name"] for f in Registry(settings).metadata(champion)["features"]]
    assert list(drift.index) == [f for f in features if f != "eval_start_weekday"] + [SCORE_FEATURE]
    assert (drift["psi"] < 0.1).all(), drift["psi"].sort_values().tail(3)
    assert drift["alert"].isna().all() and result["alerts"] == []
    assert "performance" not in result  # no outcomes known on that day

    shifted = read_partition(settings.feature_table_path("instances_w1"), SCORED_DT, settings).drop(columns="dt")
    shifted["number_of_issues"] = shifted["number_of_issues"] * 4
    write_partition(settings.feature_table_path("instances_w1"), SCORED_DT, shifted, settings)
    result = monitor_day(SCORED_DT, settings)
    drift = read_partition(settings.monitoring_table_path(DRIFT_TABLE), SCORED_DT, settings).set_index("feature")
    assert drift.loc["number_of_issues", "psi"] > settings.monitoring_psi_alert
    assert drift.loc["number_of_issues", "alert"].startswith("PSI")
    assert any("number_of_issues" in a for a in result["alerts"])


def test_outcomes_of_a_cohort_that_was_never_scored_give_an_empty_performance_row(local_copy):
    settings = local_copy.settings
    outcomes = write_w1(settings, SCORED_DT, 50).drop(columns="dt", errors="ignore")[["instance_id", "eval_start_date"]]
    outcomes["retained"] = np.int32(1)
    write_partition(settings.feature_table_path("instances_modeling"), OUTCOME_DT, outcomes, settings)
    result = monitor_day(OUTCOME_DT, settings)  # no predictions dt=SCORED_DT were ever published
    row = read_partition(settings.monitoring_table_path(PERFORMANCE_TABLE), OUTCOME_DT, settings).iloc[0]
    assert (row["labelled_rows"], row["scored_rows"]) == (50, 0)
    assert row["model_version"] is None and np.isnan(row["roc_auc"]) and np.isnan(row["precision"])
    assert result["performance"]["roc_auc"] is None and result["alerts"] == []


def test_a_day_without_data_is_explained(local_copy):
    with pytest.raises(NothingToMonitor, match="neither instances_modeling nor instances_w1"):
        monitor_day(SCORED_DT + timedelta(days=400), local_copy.settings)


@pytest.mark.parametrize(("table", "schema"), [("model_performance", PERFORMANCE_SCHEMA), ("feature_drift", DRIFT_SCHEMA)])
def test_athena_ddl_matches_what_monitoring_writes(table, schema):
    sql = (SQL_DIR / "athena" / f"{table}.sql").read_text()
    create = sqlglot.parse_one(sql.replace("${database}", "churn").replace("${location}", "s3://b/m"), read="athena")
    athena = {pa.string(): "STRING", pa.date32(): "DATE", pa.float64(): "DOUBLE", pa.int64(): "BIGINT"}
    columns = [(c.name, c.args["kind"].this) for c in create.this.expressions if isinstance(c, exp.ColumnDef)]
    assert columns == [(f.name, exp.DataType.build(athena[f.type], dialect="athena").this) for f in schema]
    assert [c.name for c in create.find(exp.PartitionedByProperty).find_all(exp.ColumnDef)] == ["dt"]
