"""How CLI commands run a job: one parser of days, one-line errors instead of tracebacks, JSON summaries."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date

import typer

from churn.core.dates import DateRangeError, days, parse_range

log = logging.getLogger("churn.cli")


def _known_errors() -> tuple[type[Exception], ...]:
    """Errors whose message is the whole story for a user (imported here: only when a command runs)."""
    from churn.core.contract import DataContractError
    from churn.core.feature_config import FeatureConfigError
    from churn.core.glue import CatalogError
    from churn.core.warehouse import PartitionNotFound
    from models.registry import RegistryError
    from models.train import TrainingDataError
    from models.transform import SchemaMismatch

    return (DataContractError, FeatureConfigError, CatalogError, PartitionNotFound, RegistryError, TrainingDataError,
            SchemaMismatch)


def run_job(job: Callable[[list[date]], object], ds: str | None, start: str | None, end: str | None):
    """Parse --ds / --start / --end once, run ``job(days)``; a rule-based skip exits 0 with a note."""
    from churn.jobs import Skipped

    try:
        first, last = parse_range(ds, start, end)
    except DateRangeError as exc:
        raise typer.BadParameter(str(exc)) from None
    return run(lambda: job(days(first, last)), Skipped)


def run(call: Callable[[], object], skipped: type[Exception] | None = None):
    try:
        return call()
    except Exception as exc:
        if skipped is not None and isinstance(exc, skipped):
            typer.secho(f"skipped: {exc}", fg="yellow", err=True)
            raise typer.Exit(0) from None
        if isinstance(exc, (DateRangeError, *_known_errors())):
            typer.secho(f"error: {exc}", fg="red", err=True)
            raise typer.Exit(1) from None
        raise


def emit(summary) -> None:
    typer.echo(json.dumps(summary.as_dict() if hasattr(summary, "as_dict") else summary, indent=1))
