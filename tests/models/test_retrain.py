"""Weekly retrain end to end on a real S3 API and in a folder: registry layout, metrics, promotion."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from churn.core import storage
from churn.core.settings import Settings
from churn.core.warehouse import read_partitions, write_partitions
from churn.dev.synthetic import write_modeling
from churn.models.registry import Registry
from churn.models.train import TrainingDataError, retrain, training_dates
from tests.models.conftest import PER_DAY, RUN_DATE, SCENARIO, VALIDATION, WINDOW


def _validation_scores(registry: Registry, version: str) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(registry.read_artifact(version, "validation_scores.parquet"))).to_pandas()


def test_first_model_is_registered_on_s3_and_becomes_champion(s3):
    result = s3.result
    assert json.loads(json.dumps(result)) == result  # JSON-serialisable for XCom
    registry = Registry(Settings())  # from CHURN_WAREHOUSE=s3://...
    assert registry.root.startswith("s3://")
    assert result["promoted"] and result["champion_version"] == result["version"]
    assert registry.alias("champion")["version"] == result["version"]
    assert registry.versions() == [result["version"]]
    assert result["version"].startswith(RUN_DATE.isoformat() + "-")
    assert result["rows"]["total"] == len(s3.data) == PER_DAY * WINDOW
    meta = registry.verify(result["version"], registry.alias("champion")["metadata_sha256"])
    assert set(meta["artifacts"]) >= {"pipeline.json", "transform.json", "metrics.json", "report.html",
                                      "validation_scores.parquet"}
    assert {"model.ubj", "model_linear.json"} & set(meta["model_files"])
    assert meta["training_window"]["start"] == (RUN_DATE - timedelta(days=WINDOW)).isoformat()
    assert meta["training_window"]["partitions_found"] == WINDOW
    assert [f["name"] for f in meta["features"]] == [c for c in s3.data.columns
                                                   if c not in ("instance_id", "eval_start_date", "retained",
                                                                "true_p")]
    assert meta["label_rate"]["total"] == pytest.approx(s3.data["retained"].mean())
    assert re.fullmatch(r"[0-9a-f]{64}", meta["data_fingerprint"])
    assert meta["libraries"]["xgboost"]
    assert [e["event"] for e in registry.history()] == ["promote"]
    # the validation cohorts are the most recent validation_days of eval_start_date, all others trained
    starts = pd.to_datetime(s3.data["eval_start_date"])
    assert result["rows"]["validation"] == int((starts > starts.max() - pd.Timedelta(days=VALIDATION)).sum())


def test_report_and_metrics_are_complete(s3):
    registry = Registry(Settings())
    version = s3.result["version"]
    metrics = json.loads(registry.read_artifact(version, "metrics.json"))
    headline = metrics["validation"]
    for key in ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "accuracy", "precision", "recall", "f1", "f2",
                "threshold", "confusion_matrix", "classification_report", "top_decile_churn_lift"):
        assert key in headline, key
    assert {c["name"] for c in metrics["candidates"]} == {"xgb_seed", "xgb_tuned", "logistic_log_counts"}
    assert len(metrics["lift_by_decile"]) == 10
    assert {r["feature"] for r in metrics["importance"]} == {
        f["name"] for f in registry.metadata(version)["features"]}
    # the headline numbers are those of the stored out-of-time validation scores
    scores = _validation_scores(registry, version)
    assert headline["roc_auc"] == pytest.approx(roc_auc_score(scores["retained"], scores["p_out_of_time"]))
    assert headline["log_loss"] == pytest.approx(log_loss(scores["retained"], scores["p_out_of_time"]), rel=1e-6)
    cm = np.asarray(headline["confusion_matrix"]["rows_true_cols_pred"])
    predicted = (scores["p_out_of_time"] >= headline["threshold"]).astype(int)
    assert cm[1, 1] == int(((scores["retained"] == 1) & (predicted == 1)).sum())
    html = registry.read_artifact(version, "report.html").decode()
    assert html.count("data:image/png;base64,") >= 6
    assert "<script" not in html and "http://" not in html and "https://" not in html  # self-contained
    assert version in html and "ROC AUC" in html and "xgb_tuned" in html


def test_validation_auc_is_close_to_the_truth(s3):
    scores = _validation_scores(Registry(Settings()), s3.result["version"])
    truth = s3.data.set_index("instance_id").loc[scores["instance_id"]]
    assert (truth["retained"].to_numpy() == scores["retained"].to_numpy()).all()
    model_auc = roc_auc_score(scores["retained"], scores["p_out_of_time"])
    truth_auc = roc_auc_score(scores["retained"], truth["true_p"])
    assert abs(model_auc - truth_auc) <= 0.03, (model_auc, truth_auc)


def test_same_data_and_seed_give_the_same_model_and_metrics(s3, local_trained):
    """S3 and the local folder were trained independently on the same data with the same seed."""
    assert local_trained.result["version"] == s3.result["version"]
    assert local_trained.result["metrics"] == s3.result["metrics"]
    s3_meta = Registry(Settings()).metadata(s3.result["version"])
    local_meta = Registry(local_trained.settings).metadata(s3.result["version"])
    for name in s3_meta["model_files"] + ["validation_scores.parquet"]:
        assert s3_meta["artifacts"][name] == local_meta["artifacts"][name], name
    assert s3_meta["data_fingerprint"] == local_meta["data_fingerprint"]


def test_rerun_with_the_same_data_is_idempotent(local_copy):
    registry = Registry(local_copy.settings)
    before = registry.history()
    again = retrain(RUN_DATE, local_copy.settings)
    assert again["reused"] and again["version"] == local_copy.result["version"]
    assert registry.history() == before and registry.versions() == [again["version"]]


def test_model_trained_on_shuffled_labels_is_never_promoted(local_copy):
    settings = local_copy.settings
    champion = local_copy.result["version"]
    write_modeling(settings, RUN_DATE, PER_DAY, shuffle_labels=True)
    result = retrain(RUN_DATE, settings)
    registry = Registry(settings)
    assert result["version"] != champion and not result["promoted"]
    assert result["champion_version"] == champion
    assert registry.alias("champion")["version"] == champion
    assert registry.alias("challenger")["version"] == result["version"]
    # every label is noise: the champion's own AUC collapses on them, so the model is held with an alert
    assert result["held"] and "labels look wrong" in result["reason"]
    assert result["metrics"]["roc_auc"] < settings.promotion_auc_floor
    html = registry.read_artifact(result["version"], "report.html").decode()
    assert "Not promoted" in html and "labels look wrong" in html


def test_worse_model_stays_challenger_even_without_a_floor(local_copy):
    """Labels shuffled only in the training cohorts: it must lose to the champion on the same rows."""
    settings = Settings(warehouse=str(local_copy.root), s3_endpoint_url=None, promotion_auc_floor=0.5, **SCENARIO)  # the lowest floor: chance
    champion = local_copy.result["version"]
    dates = training_dates(RUN_DATE, settings)
    frame = read_partitions("instances_modeling", dates, settings)
    rng = np.random.default_rng(0)
    shuffled = {}
    for dt in dates[:-settings.validation_days]:  # the validation cohorts keep their true labels
        part = frame[frame["dt"] == dt.isoformat()]
        shuffled[dt] = part.assign(retained=rng.permutation(part["retained"].to_numpy()))
    write_partitions("instances_modeling", shuffled, settings)
    result = retrain(RUN_DATE, settings)
    assert not result["promoted"]
    assert Registry(settings).alias("champion")["version"] == champion
    meta = Registry(settings).metadata(result["version"])
    comparison = meta["decision"]["comparison"]
    assert comparison["new"]["roc_auc"] < comparison["champion"]["roc_auc"] - settings.promotion_auc_tolerance
    assert "below the champion" in result["reason"]


def test_next_week_promotion_follows_the_rule_on_unseen_rows(local_copy):
    """A week later the comparison uses only cohorts the champion never saw; the decision obeys the rule."""
    settings = local_copy.settings
    next_run = RUN_DATE + timedelta(days=7)
    data = write_modeling(settings, next_run, PER_DAY, seed=9, days=7)
    result = retrain(next_run, settings)
    registry = Registry(settings)
    meta = registry.metadata(result["version"])
    comparison = meta["decision"]["comparison"]
    assert comparison["rows"] == len(data) and "newer than the champion" in comparison["rows_used"]
    # recompute both sides independently from the stored artifacts
    champion, _ = registry.load(local_copy.result["version"])
    new_scores = _validation_scores(registry, result["version"]).set_index("instance_id").loc[data["instance_id"]]
    old_p = champion.predict_proba(data.drop(columns="true_p"))
    y = data["retained"].to_numpy()
    new_auc, old_auc = roc_auc_score(y, new_scores["p_out_of_time"]), roc_auc_score(y, old_p)
    new_ll, old_ll = log_loss(y, new_scores["p_out_of_time"]), log_loss(y, old_p)
    assert comparison["champion"]["roc_auc"] == pytest.approx(old_auc)
    assert comparison["new"]["log_loss"] == pytest.approx(new_ll, rel=1e-6)
    # the rule in words (churn.models.promotion.PROMOTION_RULE), on the stored paired-bootstrap interval
    delta = comparison["paired_bootstrap"]
    assert delta["delta_auc"] == pytest.approx(new_auc - old_auc) and delta["rows"] == len(data)
    assert delta["delta_log_loss"] == pytest.approx(new_ll - old_ll, abs=1e-6)
    not_worse = new_auc >= old_auc - settings.promotion_auc_tolerance and delta["delta_log_loss_low"] <= 0
    better = delta["delta_log_loss_high"] < 0 or delta["delta_auc_low"] > 0
    expected = new_auc >= settings.promotion_auc_floor and not_worse and better
    assert result["promoted"] == expected
    assert registry.alias("champion")["version"] == (result["version"] if expected else local_copy.result["version"])


def test_too_little_data_is_a_clear_error(empty_local):
    with pytest.raises(TrainingDataError, match="no training data"):
        retrain(RUN_DATE, empty_local)
    write_modeling(empty_local, RUN_DATE, per_day=5, days=20)
    with pytest.raises(TrainingDataError, match=r"100 rows .* need at least 1000 rows"):
        retrain(RUN_DATE, empty_local)
    assert not storage.exists(empty_local.models_path, empty_local)


def test_inverted_labels_are_held_for_a_person_with_an_alert(local_copy, caplog):
    """A flipped label definition upstream: the new model must not replace the good champion by itself."""
    from churn import jobs

    settings = local_copy.settings
    champion = local_copy.result["version"]
    next_run = RUN_DATE + timedelta(days=7)
    write_modeling(settings, next_run, PER_DAY, seed=9, days=7, invert_labels=True)
    with caplog.at_level("ERROR"):
        summary = jobs.retrain(settings, next_run)
    assert not summary.promoted and summary.held
    assert "held for review, labels look wrong" in summary.reason and "churn models promote" in summary.reason
    registry = Registry(settings)
    assert registry.alias("champion")["version"] == champion
    assert registry.alias("challenger")["version"] == summary.version
    assert any("labels look wrong" in r.getMessage() for r in caplog.records)  # the alert
    problems = registry.metadata(summary.version)["decision"]["label_problems"]
    assert any("cohort weeks" in p or "validation AUC" in p for p in problems)


def test_a_first_model_on_inverted_labels_is_not_made_champion(empty_local):
    write_modeling(empty_local, RUN_DATE, PER_DAY, days=40, invert_labels=True)
    result = retrain(RUN_DATE, empty_local)
    assert not result["promoted"] and result["held"]
    assert "outside the plausible range 0.01..0.6" in result["reason"]
    assert Registry(empty_local).alias("champion") is None
