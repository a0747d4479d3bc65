"""How CLI commands run a job: one parser of days, one-line errors instead of tracebacks, JSON summaries.

Exit codes: 0 done (or a rule-based skip), 1 the run failed (missing partition, no champion, broken raw
data, AWS refused …), 2 bad input (arguments, dates, settings, the feature configuration, a warehouse that
does not exist), 3 an unexpected error (a bug: the one line says so; ``--verbose`` shows the traceback).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date

import typer

from churn.core.dates import DateRangeError, days, parse_range
from churn.core.text import inert

log = logging.getLogger("churn.cli")
FAILED_RUN, BAD_INPUT, UNEXPECTED = 1, 2, 3


def describe(exc: BaseException) -> tuple[int, str]:
    """The exit code and the one line a person reads for an error."""
    from pydantic import ValidationError

    from churn.core.errors import MissingExtra, OutputPathRefused, WarehouseNotFound, describe_aws_error
    from churn.core.feature_config import FeatureConfigError

    if isinstance(exc, (DateRangeError, FeatureConfigError, WarehouseNotFound, OutputPathRefused, MissingExtra)):
        return BAD_INPUT, str(exc)
    if isinstance(exc, ValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return BAD_INPUT, f"invalid value: {problems}"
    if isinstance(exc, _known_errors()):
        return FAILED_RUN, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    aws = describe_aws_error(exc)
    if aws:
        return FAILED_RUN, aws
    text = str(exc).splitlines()[0] if str(exc) else ""
    return UNEXPECTED, f"unexpected {type(exc).__name__}: {text} (a bug? run again with --verbose for the traceback)"


def _known_errors() -> tuple[type[Exception], ...]:
    """Errors whose message is the whole story for a user (imported here: only when a command runs)."""
    from churn.core.contract import DataContractError
    from churn.core.feature_config import FeatureConfigError
    from churn.core.glue import CatalogError
    from churn.core.iceberg_catalog import CatalogStateError
    from churn.core.warehouse import PartitionNotFound
    from churn.models.outreach import OutreachError
    from churn.models.registry import RegistryError
    from churn.models.train import TrainingDataError
    from churn.models.transform import SchemaMismatch

    return (DataContractError, FeatureConfigError, CatalogError, CatalogStateError, PartitionNotFound, RegistryError,
            TrainingDataError, OutreachError, SchemaMismatch)


def run_job(job: Callable[[list[date]], object], ds: str | None, start: str | None, end: str | None, settings=None):
    """Parse --ds / --start / --end once, run ``job(days)``; a rule-based skip exits 0 with a note."""
    from churn.jobs import Skipped

    def call():
        from churn.core.storage import require_warehouse

        chosen = days(*parse_range(ds, start, end))  # the arguments first, then the warehouse
        if settings is not None:
            require_warehouse(settings)
        return job(chosen)

    return run(call, Skipped)


def run(call: Callable[[], object], skipped: type[Exception] | None = None, settings=None):
    """Run a job; expected errors end as one line and their exit code. With ``settings``, the warehouse must exist."""
    from churn.core.storage import require_warehouse

    try:
        if settings is not None:
            require_warehouse(settings)
        return call()
    except Exception as exc:
        if skipped is not None and isinstance(exc, skipped):
            typer.secho(f"skipped: {exc}", fg="yellow", err=True)
            raise typer.Exit(0) from None
        code, message = describe(exc)
        if code == UNEXPECTED:
            raise  # main() reports it (and --verbose shows the traceback)
        typer.secho(f"error: {inert(message)}", fg="red", err=True)
        raise typer.Exit(code) from None


def emit(summary, as_json: bool = False, what: str = "done") -> None:
    """What a job command prints: one line for a person (``<what>: <days, rows, what happened>``), or with
    ``--json`` the whole summary (paths, counts, metrics) for a script."""
    data = summary.as_dict() if hasattr(summary, "as_dict") else summary
    if as_json:
        typer.echo(json.dumps(data, indent=1))
    elif hasattr(summary, "headline"):
        typer.echo(inert(f"{what}: {summary.headline()}"))
    else:  # a plain record (the dashboard's): its scalar fields on one line
        typer.echo(inert(f"{what}: " + ", ".join(f"{k} {v}" for k, v in data.items() if isinstance(v, str | int | float))))
