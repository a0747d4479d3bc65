"""Filesystem access that is the same code for a local folder and for ``s3://bucket/prefix``.

fsspec (with s3fs for S3) gives one API over both; the settings decide the endpoint, so tests
point it at a local S3 API server (moto) and production at AWS.
"""

from __future__ import annotations

import os
import posixpath
import tempfile

import fsspec
from fsspec.implementations.local import LocalFileSystem

from churn.core.settings import Settings


def filesystem(path: str, settings: Settings) -> fsspec.AbstractFileSystem:
    """The fsspec filesystem that holds ``path``."""
    if path.startswith("s3://"):
        client_kwargs = {"region_name": settings.aws_region}
        if settings.s3_endpoint_url:
            client_kwargs["endpoint_url"] = settings.s3_endpoint_url
        # skip_instance_cache: settings (endpoint) can change between tests in one process.
        return fsspec.filesystem("s3", client_kwargs=client_kwargs, skip_instance_cache=True)
    return LocalFileSystem(auto_mkdir=True)


def strip_scheme(path: str) -> str:
    return path.split("://", 1)[1] if "://" in path else path


def with_scheme(original: str, bare: str) -> str:
    """Put back the scheme of ``original`` on a path fsspec returned without one."""
    if original.startswith("s3://") and not bare.startswith("s3://"):
        return "s3://" + bare
    return bare


def exists(path: str, settings: Settings) -> bool:
    return filesystem(path, settings).exists(strip_scheme(path))


def require_warehouse(settings: Settings) -> None:
    """Reading a warehouse that does not exist would give empty answers that look like data: refuse."""
    from churn.core.errors import WarehouseNotFound

    if not exists(settings.warehouse, settings):
        raise WarehouseNotFound(f"warehouse {settings.warehouse} does not exist: check CHURN_WAREHOUSE (it is created "
                                "by the first job that writes, e.g. `churn simulate` or your producers' raw data)")


def read_bytes(path: str, settings: Settings) -> bytes:
    return filesystem(path, settings).cat_file(strip_scheme(path))


def write_bytes(path: str, data: bytes, settings: Settings) -> None:
    fs = filesystem(path, settings)
    bare = strip_scheme(path)
    if isinstance(fs, LocalFileSystem):
        fs.makedirs(posixpath.dirname(bare) or ".", exist_ok=True)
    fs.pipe_file(bare, data)


def list_dir(path: str, settings: Settings) -> list[str]:
    """Names (not paths) directly under ``path``; empty if it does not exist."""
    return fresh_list(filesystem(path, settings), path)


def fresh_exists(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    """``exists`` past fsspec's listing cache: other writers (jobs, the CLI) may have changed the store since."""
    fs.invalidate_cache()
    return fs.exists(strip_scheme(path))


def fresh_list(fs: fsspec.AbstractFileSystem, path: str) -> list[str]:
    """Names directly under ``path`` past the listing cache; empty if it does not exist."""
    bare = strip_scheme(path)
    fs.invalidate_cache()
    if not fs.exists(bare):
        return []
    return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(bare, detail=False))


def create_exclusive(fs: fsspec.AbstractFileSystem, path: str, data: bytes, settings: Settings) -> bool:
    """Create ``path`` with ``data`` only if it does not exist (atomically); False if it exists.

    Locally a hard link of a complete temporary file (fails if the name exists); on S3 a conditional put
    (``If-None-Match: *``), so of two writers exactly one gets the name.
    """
    if path.startswith("s3://"):
        import boto3
        from botocore.exceptions import ClientError

        bucket, key = path[len("s3://"):].split("/", 1)
        client = boto3.client("s3", region_name=settings.aws_region, endpoint_url=settings.s3_endpoint_url or None)
        try:
            client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True
    tmp = _complete_temp_file(path, data)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def put_atomic(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write one object; locally via a temporary file and rename so readers never see half a file."""
    if "://" in path:
        fs.pipe_file(strip_scheme(path), data)
        return
    tmp = _complete_temp_file(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _complete_temp_file(path: str, data: bytes) -> str:
    """``data`` fully written to a hidden temporary file beside ``path`` (readable by other jobs)."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; other jobs (Airflow, Athena sync) read these
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp
