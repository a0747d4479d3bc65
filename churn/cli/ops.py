"""`churn catalog | doctor | query`: the deploy-time commands (Typer wiring over churn.ops)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from churn.core.glue import CatalogError
from churn.core.settings import Settings
from churn.core.tables import TABLES, ddl_statement, render_ddl
from churn.ops.catalog import apply_catalog, apply_ddl_athena, stale_ddl, write_ddl
from churn.ops.doctor import CHECK_NAMES, FAILED, run_checks
from churn.ops.query import OutputFormat, QueryError, print_frame, run_query

catalog_app = typer.Typer(help="Athena DDL, the catalog's tables (deploy time), recovery of a lost or copied catalog.", no_args_is_help=True)
TableOption = Annotated[list[str] | None, typer.Option("--table", "-t", help="only this table (repeatable)")]


def _checked(names: list[str] | None) -> list[str]:
    unknown = [n for n in names or [] if n not in TABLES]
    if unknown:
        raise typer.BadParameter(f"unknown table(s) {', '.join(unknown)}; known: {', '.join(TABLES)}")
    return list(names or TABLES)


@catalog_app.command("ddl")
def ddl_command(
    ctx: typer.Context,
    table: TableOption = None,
    write: Annotated[bool, typer.Option("--write", help="regenerate the sql/athena/ files")] = False,
    check: Annotated[bool, typer.Option("--check", help="exit 1 if sql/athena/ differs from the registry")] = False,
    template: Annotated[bool, typer.Option("--template", help="print with ${database}/${location}")] = False,
) -> None:
    """Print the Athena DDL (filled for the current settings); --write regenerates the files, --check verifies them."""
    settings: Settings = ctx.obj
    names = _checked(table)
    if check:
        problems = stale_ddl(settings)
        for problem in problems:
            typer.echo(f"sql/athena/{problem}", err=True)
        raise typer.Exit(1 if problems else 0)
    if write:
        changed = write_ddl(settings, names)
        for path in changed:
            typer.echo(f"wrote {path}")
        typer.echo(f"{len(changed)} of {len(names)} DDL files changed")
        return
    for name in names:
        t = TABLES[name]
        typer.echo(render_ddl(t, settings) if template else ddl_statement(t, settings) + ";\n")


@catalog_app.command("apply")
def apply_command(
    ctx: typer.Context,
    table: TableOption = None,
    via: Annotated[str, typer.Option(help="glue (boto3: create or update) or athena (run the DDL)")] = "glue",
) -> None:
    """Deploy time: create (or update) the catalog database and tables (raw: Glue; ours: Iceberg catalog)."""
    settings: Settings = ctx.obj
    names = [n for n in _checked(table) if TABLES[n].glue]
    try:
        if via == "athena":
            for name, query_id in apply_ddl_athena(settings, names).items():
                typer.echo(f"{name}: {query_id}")
            return
        if via != "glue":
            raise typer.BadParameter(f"--via must be glue or athena, got {via!r}")
        for name, action in apply_catalog(settings, names).items():
            typer.echo(f"{settings.athena_database}.{name}: {action}")
    except CatalogError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(1) from None


@catalog_app.command("recover")
def recover_command(
    ctx: typer.Context,
    table: TableOption = None,
    metadata: Annotated[str | None, typer.Option(help="register this metadata file (with one --table) instead of "
                                                       "the newest")] = None,
) -> None:
    """Make the catalog true to the warehouse's folders: register tables a lost catalog forgot (from their newest
    metadata file); in a copied warehouse, give the copy its own tables (rewritten from the copy's files)."""
    from churn.cli.output import run
    from churn.core.iceberg_catalog import recover

    settings: Settings = ctx.obj
    names = [n for n in _checked(table) if TABLES[n].published]
    result = run(lambda: recover(settings, names, metadata), settings=settings)
    for name, action in result.items():
        typer.echo(f"{settings.athena_database}.{name}: {action}")


def doctor_command(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(min=1, help="how many recent days of raw events to check")] = 7,
    ds: Annotated[str | None, typer.Option(help="the day a run would build (default today, UTC): events of the "
                                              "days before it are checked")] = None,
    check: Annotated[list[str] | None, typer.Option("--check", help=f"only this check (repeatable): "
                                                    f"{', '.join(CHECK_NAMES)}")] = None,
) -> None:
    """Check a deployment read-only: settings, warehouse, raw data, feature configuration, champion, catalog,
    Athena, EMR. One line per check; exit code 1 when any fails."""
    from churn.core.dates import DateRangeError, parse_day

    settings = ctx.obj
    if isinstance(settings, Exception):  # invalid settings: the first check fails, the others cannot run
        typer.echo(f"{FAILED} settings: {settings} (see docs/configuration.md)")
        typer.echo("1 check(s) failed; the other checks need valid settings")
        raise typer.Exit(1)
    try:
        anchor = parse_day(ds, '--ds') if ds else datetime.now(UTC).date()
    except (DateRangeError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    window = [anchor - timedelta(days=k) for k in range(days, 0, -1)]
    unknown = sorted(set(check or []) - set(CHECK_NAMES))
    if unknown:
        raise typer.BadParameter(f"unknown check(s) {', '.join(unknown)}; known: {', '.join(CHECK_NAMES)}")
    results = run_checks(settings, window, report=lambda c: typer.echo(c.line()), only=set(check or []))
    failed = sum(c.status == FAILED for c in results)
    typer.echo(f"{failed} check(s) failed" if failed else "all checks passed")
    raise typer.Exit(1 if failed else 0)


def query_command(
    ctx: typer.Context,
    sql: Annotated[str, typer.Argument(help='one Athena SQL query, e.g. "SELECT count(*) FROM churn.instances_w1"')],
    max_rows: Annotated[int, typer.Option("--max-rows", min=1, help="rows shown in the table format")] = 50,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="table, csv or json")] = OutputFormat.table,
) -> None:
    """Run Athena SQL on the warehouse with DuckDB (tables: evaluations, events, instances_w1,
    instances_modeling, instances_w1_scored, model_performance, feature_drift, outreach_assignments,
    outreach_effect; also as <athena_database>.<table>)."""
    from churn.core.storage import require_warehouse

    require_warehouse(ctx.obj)
    try:
        frame = run_query(sql, ctx.obj)
    except QueryError as error:  # the SQL is at fault: bad input
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(2) from None
    print_frame(frame, max_rows, fmt)
