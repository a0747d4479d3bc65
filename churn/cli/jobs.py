"""`churn features | train | score | monitor`: the daily jobs for a day or a range, as the DAGs run them."""

from __future__ import annotations

from typing import Annotated

import typer

from churn.cli.output import emit, run, run_job
from churn.core.tables import FEATURE_TABLES

Ds = Annotated[str | None, typer.Option("--ds", help="one day, YYYY-MM-DD")]
Start = Annotated[str | None, typer.Option("--start", help="first day of a range")]
End = Annotated[str | None, typer.Option("--end", help="last day of a range (inclusive)")]
Json = Annotated[bool, typer.Option("--json", help="print the whole summary as JSON (default: one line)")]


def features_command(
    ctx: typer.Context, ds: Ds = None, start: Start = None, end: End = None,
    table: Annotated[list[str], typer.Option("--table", help="table(s) to build")] = list(FEATURE_TABLES),  # noqa: B006
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="keep chunks of a range already committed "
                                         "with the same inputs (after a crash); --no-resume rebuilds all")] = True,
    as_json: Json = False,
) -> None:
    """Build instances_w1 and instances_modeling for one day or a range (in chunks of CHURN_FEATURE_CHUNK_DAYS)."""
    from churn import jobs

    settings = ctx.obj
    unknown = sorted(set(table) - set(FEATURE_TABLES))
    if unknown:
        raise typer.BadParameter(f"unknown feature table(s) {unknown}; choose from {list(FEATURE_TABLES)}")
    # no settings: the warehouse need not exist yet, the feature job is what writes it first
    emit(run_job(lambda days: jobs.build_features(settings, days[0], days[-1], tables=table, resume=resume), ds, start,
                 end), as_json, "features")


def train_command(
    ctx: typer.Context,
    run_date: Annotated[str, typer.Option("--run-date", help="YYYY-MM-DD; trains on the window before this day")],
    as_json: Json = False,
) -> None:
    """Weekly retrain: train, evaluate, register and (if not worse than the champion) promote a model."""
    from churn import jobs
    from churn.core.dates import parse_day

    settings = ctx.obj
    day = run(lambda: parse_day(run_date, "--run-date"))  # the argument first, then the warehouse
    emit(run(lambda: jobs.retrain(settings, day), settings=settings), as_json, "train")


def score_command(ctx: typer.Context, ds: Ds = None, start: Start = None, end: End = None,
                  as_json: Json = False) -> None:
    """Score days of new trials with the champion (p_retained, decision, risk band, top reasons)."""
    from churn import jobs

    settings = ctx.obj
    emit(run_job(lambda days: jobs.score(settings, days), ds, start, end, settings=settings), as_json, "score")


monitor_app = typer.Typer(help="Monitoring: `churn monitor --start A --end B` checks days; `churn monitor report` "
                                "draws the dashboard.", no_args_is_help=False)


@monitor_app.callback(invoke_without_command=True)
def monitor_command(ctx: typer.Context, ds: Ds = None, start: Start = None, end: End = None,
                    as_json: Json = False) -> None:
    """Realised performance of days whose outcomes arrived, drift of days that were scored; raises the alerts
    and rewrites the dashboard."""
    from churn import jobs

    if ctx.invoked_subcommand:
        return
    settings = ctx.obj
    emit(run_job(lambda days: jobs.monitor(settings, days, days), ds, start, end, settings=settings), as_json,
         "monitor")


@monitor_app.command("report")
def monitor_report_command(
    ctx: typer.Context,
    end: Annotated[str | None, typer.Option("--end", help="last day shown (default: the last monitored day)")] = None,
    days: Annotated[int, typer.Option("--days", min=1, help="how many days up to --end")] = 90,
    out: Annotated[str | None, typer.Option("--out", help="also write the page here (a file or s3:// path)")] = None,
    as_json: Json = False,
) -> None:
    """Write the monitoring dashboard (self-contained HTML): AUC, average log-likelihood, Brier, observed vs
    predicted rate with 95% intervals per day and model version, a feature x day drift heat map, the alerts."""
    from churn import jobs
    from churn.core.dates import parse_day

    settings = ctx.obj
    last = run(lambda: parse_day(end, "--end")) if end else None
    emit(run(lambda: jobs.monitoring_report(settings, last, days, out), jobs.Skipped, settings=settings), as_json,
         "dashboard")


outreach_app = typer.Typer(help="Outreach: `churn outreach assign --ds D` after scoring D; `churn outreach learn --ds D` "
                                 "when the outcomes of the trials assigned 23 days earlier arrive on D.",
                            no_args_is_help=True)


@outreach_app.command("assign")
def outreach_assign_command(ctx: typer.Context, ds: Ds = None, start: Start = None, end: End = None,
                            as_json: Json = False) -> None:
    """Choose a channel (or none) for every trial scored on the day(s): outreach_assignments, for the CRM."""
    from churn import jobs

    settings = ctx.obj
    emit(run_job(lambda days: jobs.assign_outreach(settings, days), ds, start, end, settings=settings), as_json,
         "outreach assign")


@outreach_app.command("learn")
def outreach_learn_command(ctx: typer.Context, ds: Ds = None, start: Start = None, end: End = None,
                           as_json: Json = False) -> None:
    """Update the policy with the outcomes known on the day(s), in day order; publish outreach_effect."""
    from churn import jobs

    settings = ctx.obj
    emit(run_job(lambda days: jobs.learn_outreach(settings, days), ds, start, end, settings=settings), as_json,
         "outreach learn")


def maintain_command(ctx: typer.Context, as_json: Json = False) -> None:
    """Expire table snapshots older than CHURN_SNAPSHOT_RETENTION_DAYS and remove abandoned staging folders
    (what the weekly DAG's maintain_tables task does)."""
    from churn import jobs

    emit(run(lambda: jobs.maintain_tables(ctx.obj), settings=ctx.obj), as_json, "maintain")
