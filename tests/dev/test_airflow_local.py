"""The local Airflow environment without starting Airflow: its variables and its process handling."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from churn.core.settings import PROJECT_ROOT
from churn.dev.airflow_local import LocalAirflow, _is_our_airflow, free_port
from churn.dev.metadata_db import ConfiguredPostgres, EmbeddedPostgres


def test_environment_points_every_process_at_the_same_installation(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "SequentialExecutor")  # a parent's setting must not leak
    local = LocalAirflow(home=tmp_path / "home", db=ConfiguredPostgres("postgresql+psycopg2://u@db.example:5433", "x1"),
                         port=18123)
    env = local.env()
    assert env["AIRFLOW_HOME"] == str(tmp_path / "home")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(PROJECT_ROOT / "dags")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://u@db.example:5433/x1"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "4"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18123/execution/"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1" and env["AIRFLOW__API__PORT"] == "18123"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"]  # shared by all processes, or tasks cannot authenticate
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("SimpleAuthManager")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    assert env["CHURN_WAREHOUSE"].startswith("/")
    assert local.env()["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]


def test_by_default_the_metadata_db_is_the_checkouts_own_embedded_server(tmp_path, monkeypatch):
    monkeypatch.delenv("CHURN_AIRFLOW_DB_URL", raising=False)
    local = LocalAirflow(home=tmp_path / "home")
    assert isinstance(local.db, EmbeddedPostgres) and local.db.folder == tmp_path / "home" / "postgres"
    monkeypatch.setenv("CHURN_AIRFLOW_DB_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432")
    shared = LocalAirflow(home=tmp_path / "home").db
    assert isinstance(shared, ConfiguredPostgres) and shared.database.startswith("churn_airflow_")


def test_extra_env_wins(tmp_path):
    local = LocalAirflow(home=tmp_path, extra_env={"CHURN_WAREHOUSE": "/data/wh", "CHURN_SEED": "3"})
    assert local.env()["CHURN_WAREHOUSE"] == "/data/wh" and local.env()["CHURN_SEED"] == "3"


def test_free_port_avoids_a_taken_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        assert free_port(taken) != taken


def _live_members(group: int) -> list[int]:
    """The processes of a process group that still run: a killed child whose new parent has not reaped it yet is a
    zombie (pgrep lists it; the flake this test had), not a process left running."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == group and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
        except (ProcessLookupError, psutil.Error):
            pass
    return members


def test_stop_ends_the_whole_process_group(tmp_path):
    # a parent that starts a child in its own group, like the scheduler and its workers / Spark JVMs
    script = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"
    parent = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    local = LocalAirflow(home=tmp_path)
    local.processes["fake"] = parent
    local.home.mkdir(parents=True, exist_ok=True)
    local._write_pid_file()
    deadline = time.monotonic() + 10
    while len(_live_members(parent.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # the child is started
    children = _live_members(parent.pid)
    assert len(children) == 2, children
    local.stop(timeout=5)
    assert parent.poll() is not None
    deadline = time.monotonic() + 5  # killed: the kernel ends a process soon after, not at once (a busy machine's flake)
    while (remaining := _live_members(parent.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert remaining == [], (children, remaining)
    assert not local.pid_file.exists()


def test_only_our_airflow_processes_count_as_stale(tmp_path):
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert not _is_our_airflow(other.pid, tmp_path)
        assert not _is_our_airflow(2**22 + 12345, tmp_path)  # no such pid
    finally:
        other.kill()
        other.wait()
