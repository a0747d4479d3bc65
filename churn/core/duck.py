"""DuckDB connections configured like the rest of the system: UTC, offline extensions, the S3 settings."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from churn.core.settings import Settings


class DuckDBSetupError(RuntimeError):
    """DuckDB cannot reach the warehouse; the message names the package or setting to fix."""


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def extension_path(name: str) -> Path | None:
    """The binary of DuckDB extension ``name`` shipped by the ``duckdb-extension-<name>`` wheel (loads offline)."""
    import importlib

    import duckdb

    try:
        package = importlib.import_module(f"duckdb_extension_{name}")
    except ImportError:
        return None
    path = Path(package.__file__).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    return path if path.exists() else None


def load_extension(con, name: str) -> None:
    """Load an extension from its wheel, never from the network; a clear error names the package."""
    import duckdb

    con.execute("SET autoinstall_known_extensions = false")
    path = extension_path(name)
    try:
        con.execute(f"LOAD {quote(str(path))}" if path else f"LOAD {name}")
    except duckdb.Error as error:
        raise DuckDBSetupError(
            f"cannot load DuckDB's {name} extension ({str(error).splitlines()[0]}); "
            f"install duckdb-extension-{name}=={duckdb.__version__}"
        ) from None


def load_iceberg(con) -> None:
    """``iceberg_scan`` (the iceberg extension needs avro for the manifests)."""
    load_extension(con, "avro")
    load_extension(con, "iceberg")


def configure_s3(con, settings: Settings) -> None:
    """Load httpfs (never from the network) and give DuckDB the S3 region, credentials and endpoint."""
    import boto3

    load_extension(con, "httpfs")
    options = {"TYPE": "s3", "REGION": quote(settings.aws_region)}
    credentials = boto3.Session(region_name=settings.aws_region).get_credentials()
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        options["KEY_ID"] = quote(frozen.access_key)
        options["SECRET"] = quote(frozen.secret_key)
        if frozen.token:
            options["SESSION_TOKEN"] = quote(frozen.token)
    if settings.s3_endpoint_url:
        endpoint = urlparse(settings.s3_endpoint_url)
        options["ENDPOINT"] = quote(endpoint.netloc or endpoint.path)
        options["USE_SSL"] = "true" if endpoint.scheme == "https" else "false"
        options["URL_STYLE"] = quote("path")
    con.execute("CREATE OR REPLACE SECRET churn_s3 (" + ", ".join(f"{k} {v}" for k, v in options.items()) + ")")


def connect(settings: Settings, s3: bool = False):
    """An in-memory DuckDB connection in UTC; ``s3=True`` also sets up s3:// access."""
    import duckdb

    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    if settings.duckdb_memory_limit:  # beyond it DuckDB spills to its temporary directory
        con.execute(f"SET memory_limit = {quote(settings.duckdb_memory_limit)}")
    if s3:
        configure_s3(con, settings)
    return con
