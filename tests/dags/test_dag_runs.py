"""The DAGs run with `dag.test()` over consecutive days on a small simulated warehouse (real Spark, real model).

Starting from a history with a champion (conftest ``trained_history``): three consecutive daily
features runs → scoring of exactly the days their asset events name → monitoring → a range rebuild
that asks for rescoring → the next weekly retrain. `churn score` and `churn monitor` over the same
days, on a copy taken before scoring, must publish the same files and raise the same alerts.
SQLite metadata DB in a temporary AIRFLOW_HOME (see conftest).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from churn.cli import app
from churn.core.dates import days as days_between
from churn.core.tables import (
    FEATURE_DRIFT,
    INSTANCES_MODELING,
    INSTANCES_W1,
    MODEL_PERFORMANCE,
    MODEL_REGISTRY_URI,
    OUTREACH_ASSIGNMENTS,
    PREDICTIONS,
)
from churn.dag_support import runs
from churn.dev.synthetic import make_frame
from churn.jobs import training_data_ready

from .conftest import DAGS_FOLDER, FIRST_RETRAIN, HISTORY

DAILY = [FIRST_RETRAIN + timedelta(days=n) for n in range(3)]  # the days after the history
SECOND_RETRAIN = DAILY[-1] + timedelta(days=1)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _run(dag_id: str, day: date | None, conf: dict | None = None):
    from airflow.dag_processing.dagbag import DagBag

    # A freshly parsed DAG per run, as a worker would have: in-process runs share the DAG object,
    # and a previous run's params must not leak into the next one.
    dag = DagBag(dag_folder=str(DAGS_FOLDER / f"{dag_id}.py")).dags[dag_id]
    for task in dag.tasks:  # a failure must fail the test now, not wait out a 5 minute retry delay
        task.retries = 0
    return dag.test(logical_date=_midnight(day) if day else None, run_conf=conf)


def _states(dag_run) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)}


def _xcom(dag_run, task_id: str):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.scalars(select(XComModel).where(
            XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id, XComModel.task_id == task_id,
            XComModel.key == "return_value")).first()
        value = row.value
    return json.loads(value) if isinstance(value, str) else value


def _rows(settings, tables) -> dict:
    """Every published row of the tables, by table (outputs are compared by rows: Iceberg files have unique names)."""
    from churn.core.warehouse import list_partitions, read_partitions

    return {t.name: read_partitions(t, list_partitions(t, settings), settings) for t in tables}


def _asset_events(uri: str, column: str = "extra") -> list:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(getattr(AssetEvent, column))
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == uri)
            .order_by(AssetEvent.id)
        ).all()
    return [row[0] for row in rows]


def _asset_extras(uri: str) -> list[dict]:
    return _asset_events(uri)


def test_daily_features_then_scoring_then_retrain(metadata_db, warehouse_with_champion, spark, tmp_path, monkeypatch):
    from churn.core.warehouse import list_partitions, read_partition
    from churn.models.registry import Registry

    settings = warehouse_with_champion
    monkeypatch.setenv("CHURN_MONITORING_PSI_ALERT", "0.001")  # every drift row alerts: alerts to compare
    monkeypatch.setenv("CHURN_MONITORING_DRIFT_P_VALUE", "1")
    w1, modeling, predictions = INSTANCES_W1, INSTANCES_MODELING, PREDICTIONS
    registry = Registry(settings)
    champion = registry.alias("champion")["version"]

    # 1. three consecutive daily runs; each publishes dt=D and announces D to scoring and monitoring
    for day in DAILY:
        run = _run("churn_features", day)
        assert str(run.state) == "success", _states(run)
        assert _states(run) == {"build_features": "success"}
    assert list_partitions(w1, settings) == days_between(HISTORY[0], DAILY[-1])
    assert list_partitions(modeling, settings) == days_between(HISTORY[0], DAILY[-1])
    extras = _asset_extras(INSTANCES_W1.asset_uri)[-3:]
    assert [e["dts"] for e in extras] == [[d.isoformat()] for d in DAILY]
    assert [e["dts"] for e in _asset_extras(INSTANCES_MODELING.asset_uri)[-3:]] == [[d.isoformat()] for d in DAILY]
    for uri in (INSTANCES_W1.asset_uri, INSTANCES_MODELING.asset_uri):  # the keys that name downstream runs
        assert _asset_events(uri, "partition_key")[-3:] == [d.isoformat() for d in DAILY]
    w1_rows = {day: len(read_partition(w1, day, settings)) for day in DAILY}
    assert all(n > 20 for n in w1_rows.values()), w1_rows
    assert all(len(read_partition(modeling, day, settings)) > 20 for day in DAILY)

    # 2. scoring of exactly the days in those events, as an asset-triggered run receives them
    dts = [d.isoformat() for d in runs.event_days(extras)]
    run = _run("churn_scoring", None, {"dts": dts})
    assert str(run.state) == "success", _states(run)
    assert list_partitions(predictions, settings) == DAILY
    for day in DAILY:
        frame = read_partition(predictions, day, settings)
        assert len(frame) == w1_rows[day]
        assert set(frame["model_version"]) == {champion}
        assert frame["p_retained"].between(0, 1).all() and frame["instance_id"].is_unique
    assert _asset_extras(PREDICTIONS.asset_uri)[-1] == {"dts": dts}

    # 2b. monitoring of those days: drift of each scored day, realised performance of the outcomes that
    #     arrived on it (their cohorts were never scored: rows with scored_rows = 0)
    run = _run("churn_monitoring", None, {"dts": dts})
    # every drift row alerts: the tables are published, then check_alerts fails the run (red in the UI)
    assert str(run.state) == "failed" and _states(run) == {"monitor": "success", "check_alerts": "failed"}
    for table in (FEATURE_DRIFT, MODEL_PERFORMANCE):
        assert list_partitions(table, settings) == DAILY
    drift = read_partition(FEATURE_DRIFT, DAILY[0], settings)
    assert "p_retained" in set(drift["feature"]) and drift["psi"].notna().all()
    dag_monitoring = _xcom(run, "monitor")
    assert dag_monitoring["alerts"] and _asset_extras(MODEL_PERFORMANCE.asset_uri)[-1]["dts"] == dts

    # 2c. the CLI over the same days republishes the same rows and raises the same alerts
    outputs = [PREDICTIONS, MODEL_PERFORMANCE, FEATURE_DRIFT]
    dag_rows = _rows(settings, outputs)
    cli = CliRunner()
    scored = cli.invoke(app, ["score", "--start", dts[0], "--end", dts[-1], "--json"])
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.stdout)["days"] == dts
    monitored = cli.invoke(app, ["monitor", "--start", dts[0], "--end", dts[-1], "--json"])
    assert monitored.exit_code == 0, monitored.output
    cli_monitoring = json.loads(monitored.stdout)
    assert cli_monitoring["alerts"] == dag_monitoring["alerts"]
    assert cli_monitoring["days"] == dag_monitoring["days"] == dts
    cli_rows = _rows(settings, outputs)
    assert {k: len(v) for k, v in dag_rows.items()} == {k: len(v) for k, v in cli_rows.items()}
    assert len(dag_rows["instances_w1_scored"]) > 60
    for name, frame in dag_rows.items():
        pd.testing.assert_frame_equal(cli_rows[name], frame)

    # 2d. outreach for the scored days: learning first (no outcomes of assigned days yet: counted, not an error),
    #     then one assignment partition per scored day, a row per scored trial; a rerun publishes the same rows
    run = _run("churn_outreach", None, {"assign": dts, "learn": [dts[0]]})
    assert str(run.state) == "success", _states(run)
    assert _xcom(run, "learn")["results"][0]["status"] == "no assignments"
    assert list_partitions(OUTREACH_ASSIGNMENTS, settings) == DAILY
    assigned = _rows(settings, [OUTREACH_ASSIGNMENTS])["outreach_assignments"]
    assert len(assigned) == sum(w1_rows.values()) and assigned["propensity"].between(0, 1).all()
    assert _asset_extras(OUTREACH_ASSIGNMENTS.asset_uri)[-1] == {"dts": dts}
    run = _run("churn_outreach", None, {"assign": dts})
    assert str(run.state) == "success", _states(run)
    pd.testing.assert_frame_equal(_rows(settings, [OUTREACH_ASSIGNMENTS])["outreach_assignments"], assigned)

    # 3. a range rebuild of the last two days in one task, asking for rescoring: same rows
    start, end = DAILY[1], DAILY[2]
    run = _run("churn_features", None, {"start": start.isoformat(), "end": end.isoformat(), "rescore": True})
    assert str(run.state) == "success", _states(run)
    assert _asset_extras(INSTANCES_W1.asset_uri)[-1]["dts"] == [start.isoformat(), end.isoformat()]
    assert _asset_events(INSTANCES_W1.asset_uri, "partition_key")[-1] == f"{start.isoformat()}/{end.isoformat()}"
    assert {day: len(read_partition(w1, day, settings)) for day in DAILY} == w1_rows

    # 4. the next weekly retrain registers a new version; it is promoted or the champion is kept
    run = _run("churn_retrain", SECOND_RETRAIN)
    assert str(run.state) == "success", _states(run)
    versions = registry.versions()
    assert len(versions) == 2 and versions[-1].startswith(SECOND_RETRAIN.isoformat())
    assert registry.alias("champion")["version"] in versions
    models_extra = _asset_extras(MODEL_REGISTRY_URI)[-1]
    assert models_extra["version"] == versions[-1] and isinstance(models_extra["promoted"], bool)


def test_scoring_without_a_champion_fails_at_once(metadata_db, empty_warehouse):
    run = _run("churn_scoring", None, {"dts": [DAILY[0].isoformat()]})
    assert str(run.state) == "failed"
    assert _states(run)["score"] == "failed"


def test_retrain_waits_for_the_last_partition_of_its_training_window(metadata_db, empty_warehouse, monkeypatch):
    """The sensor of run D is satisfied by instances_modeling dt=D-1 (the window is [D-90, D)), not by dt=D."""
    from airflow.dag_processing.dagbag import DagBag

    from churn.core.warehouse import write_partition

    dag = DagBag(dag_folder=str(DAGS_FOLDER / "churn_retrain.py")).dags["churn_retrain"]
    sensor = dag.get_task("wait_for_features")
    assert sensor.mode == "reschedule" and sensor.poke_interval >= 60

    def poke() -> bool:
        return bool(sensor.python_callable(logical_date=_midnight(FIRST_RETRAIN), dag_run=None))

    def publish(day):
        frame, _ = make_frame(day - timedelta(days=30), 1, np.random.default_rng(0))
        write_partition(INSTANCES_MODELING, day, frame, empty_warehouse)

    publish(FIRST_RETRAIN - timedelta(days=2))
    assert not poke()
    publish(FIRST_RETRAIN)  # the run's own day is not part of its window
    assert not poke() and not training_data_ready(empty_warehouse, FIRST_RETRAIN)
    publish(FIRST_RETRAIN - timedelta(days=1))
    assert poke() and training_data_ready(empty_warehouse, FIRST_RETRAIN)
