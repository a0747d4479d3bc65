"""A local Airflow 3 for this project: scheduler, dag-processor and api-server on PostgreSQL.

Everything lives under ``<repo>/.airflow`` (AIRFLOW_HOME: config, logs, the SimpleAuthManager
password file); the metadata DB is the PostgreSQL database ``churn_airflow`` on 127.0.0.1:5432,
created when missing. The processes run in their own process groups (``setsid``) so that stopping
them also stops the LocalExecutor workers and the Spark JVMs their tasks started.

    python -m churn.tools.airflow_local serve              # UI on http://127.0.0.1:8080, Ctrl-C stops it
    eval "$(python -m churn.tools.airflow_local env)"      # then `airflow backfill create …` hits the same DB
    python -m churn.tools.airflow_local airflow dags list  # same, for one command
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import typer

from churn.core.settings import PROJECT_ROOT

DEFAULT_HOME = PROJECT_ROOT / ".airflow"
DEFAULT_DATABASE = "churn_airflow"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
COMPONENTS = ("scheduler", "dag-processor", "api-server")  # what runs the DAGs (the demo, the tests)
# what the UI needs to show a green health badge too: the triggerer (deferred tasks, e.g. sensors)
UI_COMPONENTS = (*COMPONENTS, "triggerer")
# Local only: every process must share the JWT secret, or tasks cannot call the execution API.
LOCAL_JWT_SECRET = "churn-local-only-jwt-secret-not-for-production"
LOCAL_FERNET_KEY = "Y2h1cm4tbG9jYWwtb25seS1mZXJuZXQta2V5LTMyYjE="  # base64 of 32 bytes, local only
ADMIN_USER = "admin"


class AirflowNotHealthy(RuntimeError):
    """The local Airflow did not become healthy in time; the message points at the logs."""


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if nothing listens on it at 127.0.0.1, else a free ephemeral port."""
    if preferred and not _listening(preferred):
        return preferred
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with closing(socket.socket()) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class LocalAirflow:
    """One local Airflow installation: its environment, its database and its processes."""

    home: Path = DEFAULT_HOME
    database: str = DEFAULT_DATABASE
    port: int = 8080
    dags_folder: Path = PROJECT_ROOT / "dags"
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    log_server_port: int = 0

    def __post_init__(self) -> None:
        self.home = Path(self.home)
        self.log_server_port = self.log_server_port or free_port(8793)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sql_alchemy_conn(self) -> str:
        return f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.database}"

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

    def ensure_database(self) -> bool:
        """Create the metadata database if it does not exist; True if it was created."""
        import psycopg2

        conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
                if cur.fetchone():
                    return False
                cur.execute(f'CREATE DATABASE "{self.database}"')
                return True
        finally:
            conn.close()

    def drop_database(self) -> None:
        import psycopg2

        conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            conn.close()

    def migrate(self) -> None:
        """`airflow db migrate`: creates the schema on a new database, upgrades an old one."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.ensure_database()
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
        if _listening(self.port):
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


# ---- command line -------------------------------------------------------------------------------

app = typer.Typer(
    help="The project's local Airflow (PostgreSQL metadata DB, AIRFLOW_HOME=.airflow).",
    no_args_is_help=True,
    add_completion=False,
)


def _port_option() -> int:
    from churn.core.settings import Settings

    return Settings().airflow_port


@app.command()
def serve(port: int = typer.Option(None, help="api-server port (default: setting CHURN_AIRFLOW_PORT, 8080)")) -> None:
    """Start scheduler, dag-processor, api-server and triggerer; print the URL and login; Ctrl-C stops them."""
    local = LocalAirflow(port=port or _port_option())
    print(
        f"starting Airflow (AIRFLOW_HOME={local.home}, metadata DB postgresql://{PG_HOST}:{PG_PORT}/{local.database})"
    )
    try:
        with local.running(UI_COMPONENTS):
            print(f"\nAirflow UI: {local.url}")
            print(f"log in as '{ADMIN_USER}' with password '{local.admin_password()}' (from {local.password_file})")
            print("DAGs: churn_features, churn_retrain, churn_scoring, churn_monitoring; process logs: .airflow/logs/*.out")
            print('other shell, same installation: eval "$(python -m churn.tools.airflow_local env)"; airflow dags list')
            paused = _paused_dags(local)
            if paused:
                print(
                    f"paused (e.g. by `make demo`): {', '.join(paused)}; they run nothing, not even backfills, "
                    f"until unpaused: airflow dags unpause <dag_id>, or the toggle in the UI"
                )
            print("Ctrl-C stops everything.")
            while all(p.poll() is None for p in local.processes.values()):
                time.sleep(1)
            dead = {n: p.returncode for n, p in local.processes.items() if p.poll() is not None}
            print(f"an Airflow process exited ({dead}); stopping the rest", file=sys.stderr)
            raise typer.Exit(1)
    except KeyboardInterrupt:
        print("\nstopped")
    except AirflowNotHealthy as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None


def _paused_dags(local: LocalAirflow, timeout: float = 60) -> list[str]:
    """Paused DAGs once the dag-processor has registered ours (empty if it takes too long)."""
    deadline = time.monotonic() + timeout
    try:
        token = local.token()
        while time.monotonic() < deadline:
            dags = local.api("GET", "/dags?limit=100", token=token)["dags"]
            if dags:
                return sorted(d["dag_id"] for d in dags if d["is_paused"])
            time.sleep(2)
    except (OSError, RuntimeError, KeyError):
        pass
    return []


@app.command()
def env(port: int = typer.Option(None, help="api-server port (default: setting CHURN_AIRFLOW_PORT, 8080)")) -> None:
    """Print `export` lines that point the `airflow` CLI at this installation."""
    import shlex

    local = LocalAirflow(port=port or _port_option())
    for key, value in sorted(local.env().items()):
        if key.startswith(("AIRFLOW", "CHURN_")) or key == "PYTHONPATH":
            print(f"export {key}={shlex.quote(value)}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def airflow(ctx: typer.Context) -> None:
    """Run an `airflow` CLI command against this installation, e.g. `airflow backfill create …`."""
    local = LocalAirflow(port=_port_option())
    raise typer.Exit(local.airflow(*ctx.args, check=False).returncode)


@app.command()
def stop() -> None:
    """Stop processes a killed `serve`/`demo` left behind (only ours, by recorded process group)."""
    LocalAirflow(port=_port_option()).stop_stale()


if __name__ == "__main__":
    app()
