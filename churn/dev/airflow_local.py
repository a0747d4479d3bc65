"""A local Airflow 3 for this project: scheduler, dag-processor and api-server on PostgreSQL.

Everything lives under ``<repo>/.airflow`` (AIRFLOW_HOME: config, logs, the SimpleAuthManager
password file, and the metadata DB: this checkout's embedded PostgreSQL server in ``.airflow/postgres``,
or its own database on the server ``CHURN_AIRFLOW_DB_URL`` names; see ``churn.dev.metadata_db``). The
processes run in their own process groups (``setsid``) so that stopping them also stops the LocalExecutor
workers and the Spark JVMs their tasks started; the embedded server is stopped with them.

    churn airflow serve               # UI on http://127.0.0.1:8080 (make airflow), Ctrl-C stops it
    eval "$(churn airflow env)"       # then `airflow backfill create …` hits the same DB (while serve runs)
    churn airflow run dags list       # one `airflow` command against this installation
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from churn.core.settings import PROJECT_ROOT
from churn.dev.metadata_db import ConfiguredPostgres, EmbeddedPostgres, metadata_database
from churn.dev.ports import checkout_port, free_port, listening

DEFAULT_HOME = PROJECT_ROOT / ".airflow"
COMPONENTS = ("scheduler", "dag-processor", "api-server")  # what runs the DAGs (the demo, the tests)
# what the UI needs to show a green health badge too: the triggerer (deferred tasks, e.g. sensors)
UI_COMPONENTS = (*COMPONENTS, "triggerer")
# Local only: every process must share the JWT secret, or tasks cannot call the execution API.
LOCAL_JWT_SECRET = "churn-local-only-jwt-secret-not-for-production"
LOCAL_FERNET_KEY = "Y2h1cm4tbG9jYWwtb25seS1mZXJuZXQta2V5LTMyYjE="  # base64 of 32 bytes, local only
ADMIN_USER = "admin"


class AirflowNotHealthy(RuntimeError):
    """The local Airflow did not become healthy in time; the message points at the logs."""


@dataclass
class LocalAirflow:
    """One local Airflow installation: its environment, its database and its processes."""

    home: Path = DEFAULT_HOME
    port: int = 8080
    # the entry point's choice (metadata_database(settings.airflow_db_url, home)); None: from the environment
    db: EmbeddedPostgres | ConfiguredPostgres | None = None
    dags_folder: Path = PROJECT_ROOT / "dags"
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    log_server_port: int = 0

    def __post_init__(self) -> None:
        self.home = Path(self.home)
        self.log_server_port = self.log_server_port or free_port(checkout_port(40000))
        if self.db is None:
            from churn.core.settings import Settings

            self.db = metadata_database(Settings().airflow_db_url, self.home)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sql_alchemy_conn(self) -> str:
        return self.db.url

    @property
    def password_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json.generated"

    @property
    def pid_file(self) -> Path:
        return self.home / "processes.json"

    def env(self) -> dict[str, str]:
        """The environment of every Airflow process (and of `airflow` CLI calls) of this installation."""
        env = dict(os.environ)
        # A parent's AIRFLOW__* (e.g. a test's SQLite home) must not leak into this installation.
        for key in [k for k in env if k.startswith("AIRFLOW__") or k == "AIRFLOW_CONFIG"]:
            del env[key]
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__FERNET_KEY": LOCAL_FERNET_KEY,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__EXPOSE_CONFIG": "True",
                "AIRFLOW__API_AUTH__JWT_SECRET": LOCAL_JWT_SECRET,
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_server_port),
                "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
                "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "True",
                # New DAG files show up within 30 s instead of the 5 minute default.
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
                "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p),
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
                "SPARK_LOCAL_IP": "127.0.0.1",
                "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost",
            }
        )
        # Tasks resolve CHURN_WAREHOUSE against their working directory: pin it to an absolute path.
        from churn.core.settings import Settings

        env.setdefault("CHURN_WAREHOUSE", Settings().warehouse)
        env.update(self.extra_env)
        return env

    # ---- database -------------------------------------------------------------------------------

    def migrate(self) -> None:
        """`airflow db migrate`: creates the schema on a new database, upgrades an old one."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.db.start()
        self.airflow("db", "migrate", capture=True)

    # ---- CLI and REST ---------------------------------------------------------------------------

    def airflow(self, *args: str, capture: bool = False, check: bool = True) -> subprocess.CompletedProcess:
        """Run one `airflow` CLI command against this installation."""
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env(),
            cwd=PROJECT_ROOT,
            text=True,
            capture_output=capture,
        )
        if check and result.returncode != 0:
            detail = (result.stderr or "")[-3000:] if capture else ""
            raise subprocess.CalledProcessError(result.returncode, ["airflow", *args], result.stdout, detail)
        return result

    def admin_password(self) -> str | None:
        try:
            return json.loads(self.password_file.read_text()).get(ADMIN_USER)
        except (OSError, ValueError):
            return None

    def token(self) -> str:
        """A JWT for the REST API, logged in as the SimpleAuthManager admin."""
        body = {"username": ADMIN_USER, "password": self.admin_password() or ""}
        reply = self._http("POST", "/auth/token", body, token=None)
        return reply["access_token"]

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
        """Call the REST API (``/api/v2/...``) as admin."""
        return self._http(method, f"/api/v2{path}", body, token=token or self.token())

    def _http(self, method: str, path: str, body: dict | None, token: str | None, timeout: float = 30) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 only, never a proxy
        try:
            with opener.open(request, timeout=timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: HTTP {exc.code}: {exc.read().decode()[:1000]}") from None
        return json.loads(payload) if payload else {}

    def health(self) -> dict | None:
        try:
            return self._http("GET", "/api/v2/monitor/health", None, token=None, timeout=5)
        except (OSError, RuntimeError, ValueError):
            return None

    def is_healthy(self, components: tuple[str, ...] = COMPONENTS) -> bool:
        health = self.health()
        if not health:
            return False
        keys = {"scheduler": "scheduler", "dag-processor": "dag_processor", "api-server": "metadatabase",
                "triggerer": "triggerer"}
        return all((health.get(keys[c]) or {}).get("status") == "healthy" for c in components if c in keys)

    # ---- processes ------------------------------------------------------------------------------

    def start(self, components: tuple[str, ...] = COMPONENTS, timeout: float = 180) -> None:
        """Start the components (each in a new session/process group) and wait until healthy."""
        self.stop_stale()
        if listening(self.port):
            raise AirflowNotHealthy(f"port {self.port} is already in use: stop what listens there or pick another")
        self.migrate()
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        env = self.env()
        for name in components:
            args = [sys.executable, "-m", "airflow", name]
            if name == "api-server":
                args += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
            out = open(logs / f"{name}.out", "ab")  # noqa: SIM115 - handed to the child, closed at stop
            self.processes[name] = subprocess.Popen(
                args, env=env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            out.close()
        self._write_pid_file()
        self.wait_healthy(components, timeout)

    def wait_healthy(self, components: tuple[str, ...] = COMPONENTS, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
            if dead:
                raise AirflowNotHealthy(f"exited early: {dead}; see {self.home / 'logs'}/<component>.out")
            if self.is_healthy(components):
                return
            time.sleep(1)
        raise AirflowNotHealthy(
            f"not healthy after {timeout:.0f} s: {self.health()}; see {self.home / 'logs'}/<component>.out"
        )

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM every process group we started, SIGKILL what is left after ``timeout``."""
        for process in self.processes.values():
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for process in self.processes.values():
            _signal_group(process.pid, signal.SIGKILL)  # workers and Spark JVMs of the group, too
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self.processes.clear()
        self.pid_file.unlink(missing_ok=True)
        self.db.stop()

    def stop_stale(self) -> None:
        """Stop the process groups a previous, killed run of ours left behind (recorded in processes.json)."""
        try:
            recorded = json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return
        for name, pid in recorded.items():
            if _is_our_airflow(pid, self.home):
                print(f"stopping a stale {name} (process group {pid}) left by an earlier run", file=sys.stderr)
                _signal_group(pid, signal.SIGTERM)
                for _ in range(100):
                    if not _alive(pid):
                        break
                    time.sleep(0.1)
                _signal_group(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)

    def _write_pid_file(self) -> None:
        self.pid_file.write_text(json.dumps({n: p.pid for n, p in self.processes.items()}))

    @contextmanager
    def running(self, components: tuple[str, ...] = COMPONENTS, timeout: float = 180):
        """Start, yield, and stop in every case (exception, Ctrl-C, SIGTERM)."""
        # SIGINT too: a shell starts background jobs with SIGINT ignored, and then Ctrl-C / kill -INT
        # would leave the process groups running.
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, _raise_keyboard_interrupt)
        try:
            self.start(components, timeout)
            yield self
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _raise_keyboard_interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_our_airflow(pid: int, home: Path) -> bool:
    """Only a live `airflow` process whose AIRFLOW_HOME is ours (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(b"airflow" in part for part in cmdline) and f"AIRFLOW_HOME={home}".encode() in environ
