"""Filesystem access that is the same code for a local folder and for ``s3://bucket/prefix``.

fsspec (with s3fs for S3) gives one API over both; the settings decide the endpoint, so tests
point it at a local S3 API server (moto) and production at AWS.
"""

from __future__ import annotations

import posixpath

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
    fs = filesystem(path, settings)
    bare = strip_scheme(path)
    if not fs.exists(bare):
        return []
    return sorted(posixpath.basename(p.rstrip("/")) for p in fs.ls(bare, detail=False))
