"""Output files a person names (``--out``): never where they would replace the warehouse's data."""

from __future__ import annotations

import os

from churn.core.settings import Settings


def require_output_path(path: str, settings: Settings, allowed: str = "reports") -> None:
    """An output file a person names (``--out``) never replaces what the warehouse holds: it may not lie in the
    warehouse (but in its ``allowed`` folder) nor in a raw table's location, nor be a folder."""
    from churn.core.errors import OutputPathRefused
    from churn.core.settings import join
    from churn.core.tables import TABLES

    def resolved(p: str) -> str:
        return p.rstrip("/") if "://" in p else os.path.realpath(p)

    target = resolved(path)
    inside = [root for root in {settings.warehouse, *(t.location(settings) for t in TABLES.values())}
              if target == resolved(root) or target.startswith(resolved(root) + "/")]
    if inside and not target.startswith(resolved(join(settings.warehouse, allowed)) + "/"):
        raise OutputPathRefused(f"--out {path} lies in {max(inside, key=len)}, which holds the warehouse's data: "
                                f"write elsewhere (or under {join(settings.warehouse, allowed)}/)")
    if "://" not in path and os.path.isdir(target):
        raise OutputPathRefused(f"--out {path} is a folder: name a file, e.g. {join(path, 'monitoring_dashboard.html')}")
