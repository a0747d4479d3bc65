"""The DAGs run with `dag.test()` over consecutive days on a small simulated warehouse (real Spark, real model).

Starting from a history with a champion (conftest ``trained_history``): three consecutive daily
features runs → scoring of exactly the days their asset events name → a range rebuild that asks for
rescoring → the next weekly retrain. SQLite metadata DB in a temporary AIRFLOW_HOME (see conftest).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from churn import orchestration as orch

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


def _asset_extras(uri: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.extra)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == uri)
            .order_by(AssetEvent.id)
        ).all()
    return [row[0] for row in rows]


def test_daily_features_then_scoring_then_retrain(metadata_db, warehouse_with_champion, spark):
    from churn.warehouse import list_partitions, read_partition
    from models.registry import Registry

    settings = warehouse_with_champion
    w1, modeling = settings.feature_table_path("instances_w1"), settings.feature_table_path("instances_modeling")
    predictions = settings.predictions_table_path()
    registry = Registry(settings)
    champion = registry.alias("champion")["version"]

    # 1. three consecutive daily runs; each publishes dt=D and announces D to the scoring DAG
    for day in DAILY:
        run = _run("churn_features", day)
        assert str(run.state) == "success", _states(run)
        assert _states(run) == {"build_features": "success", "register_partitions": "skipped"}  # local: no Glue
    assert list_partitions(w1, settings) == orch.days(HISTORY[0], DAILY[-1])
    assert list_partitions(modeling, settings) == orch.days(HISTORY[0], DAILY[-1])
    extras = _asset_extras(orch.INSTANCES_W1_URI)[-3:]
    assert [e["dts"] for e in extras] == [[d.isoformat()] for d in DAILY]
    assert _asset_extras(orch.INSTANCES_MODELING_URI)[-3:] == extras
    w1_rows = {day: len(read_partition(w1, day, settings)) for day in DAILY}
    assert all(n > 20 for n in w1_rows.values()), w1_rows
    assert all(len(read_partition(modeling, day, settings)) > 20 for day in DAILY)

    # 2. scoring of exactly the days in those events, as an asset-triggered run receives them
    dts = [d.isoformat() for d in orch.dates_to_score(extras)]
    run = _run("churn_scoring", None, {"dts": dts})
    assert str(run.state) == "success", _states(run)
    assert list_partitions(predictions, settings) == DAILY
    for day in DAILY:
        frame = read_partition(predictions, day, settings)
        assert len(frame) == w1_rows[day]
        assert set(frame["model_version"]) == {champion}
        assert frame["p_retained"].between(0, 1).all() and frame["instance_id"].is_unique
    assert _asset_extras(orch.PREDICTIONS_URI)[-1] == {"dts": dts}

    # 2b. monitoring of the days scoring announced: drift partitions for each (no outcomes of scored
    #     cohorts yet: their predictions were made before this history was scored)
    run = _run("churn_monitoring", None, {"dts": dts})
    assert str(run.state) == "success", _states(run)
    monitored = list_partitions(settings.monitoring_table_path("feature_drift"), settings)
    assert monitored == DAILY
    drift = read_partition(settings.monitoring_table_path("feature_drift"), DAILY[0], settings)
    assert "p_retained" in set(drift["feature"]) and drift["psi"].notna().all()
    assert _asset_extras(orch.MONITORING_URI)[-1]["dts"] == dts

    # 3. a range rebuild of the last two days in one task, asking for rescoring: same rows
    start, end = DAILY[1], DAILY[2]
    run = _run("churn_features", None, {"start": start.isoformat(), "end": end.isoformat(), "rescore": True})
    assert str(run.state) == "success", _states(run)
    assert _asset_extras(orch.INSTANCES_W1_URI)[-1]["dts"] == [start.isoformat(), end.isoformat()]
    assert {day: len(read_partition(w1, day, settings)) for day in DAILY} == w1_rows

    # 4. the next weekly retrain registers a new version; it is promoted or the champion is kept
    run = _run("churn_retrain", SECOND_RETRAIN)
    assert str(run.state) == "success", _states(run)
    versions = registry.versions()
    assert len(versions) == 2 and versions[-1].startswith(SECOND_RETRAIN.isoformat())
    assert registry.alias("champion")["version"] in versions
    models_extra = _asset_extras(orch.MODELS_URI)[-1]
    assert models_extra["version"] == versions[-1] and isinstance(models_extra["promoted"], bool)


def test_scoring_without_a_champion_fails_at_once(metadata_db, empty_warehouse):
    run = _run("churn_scoring", None, {"dts": [DAILY[0].isoformat()]})
    assert str(run.state) == "failed"
    assert _states(run)["score"] == "failed"


def test_retrain_waits_until_its_training_window_is_published(metadata_db, empty_warehouse):
    from airflow.dag_processing.dagbag import DagBag

    assert not orch.training_data_ready(FIRST_RETRAIN, empty_warehouse)
    dag = DagBag(dag_folder=str(DAGS_FOLDER / "churn_retrain.py")).dags["churn_retrain"]
    sensor = dag.get_task("wait_for_features")
    assert sensor.mode == "reschedule" and sensor.poke_interval >= 60
