"""The Iceberg catalog is opened from several threads at once (the feature job reads published tables while its
engine starts): the first uses must not each create the SQL catalog's tables."""

from __future__ import annotations

import threading

from churn.core.iceberg_catalog import _catalog, catalog
from churn.core.settings import Settings


def test_first_uses_of_a_new_catalog_from_several_threads_all_succeed(tmp_path):
    settings = Settings(warehouse=str(tmp_path / "warehouse"), _env_file=None)
    _catalog.cache_clear()
    start = threading.Barrier(8)
    opened, failed = [], []

    def open_catalog():
        start.wait()
        try:
            opened.append(catalog(settings))
        except Exception as exc:  # noqa: BLE001 - the failure is the finding
            failed.append(exc)

    threads = [threading.Thread(target=open_catalog) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == []
    assert len({id(c) for c in opened}) == 1  # one catalog per configuration and process
    assert catalog(settings).list_namespaces() is not None
