"""`churn simulate | demo | airflow`: the laptop commands (Typer wiring over churn.dev)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta

import typer

from churn.cli.output import run
from churn.core.dates import parse_day
from churn.core.settings import Settings
from churn.dev.airflow_local import ADMIN_USER, DEFAULT_HOME, UI_COMPONENTS, AirflowNotHealthy, LocalAirflow
from churn.dev.demo import DemoFailed, run_demo
from churn.dev.demo_report import print_summary
from churn.dev.metadata_db import EmbeddedPostgres, metadata_database
from churn.dev.simulator import existing_raw, simulate


def simulate_command(
    ctx: typer.Context,
    start: str = typer.Option(None, "--start", help="first eval start day YYYY-MM-DD (default: the world ends today, UTC)"),
    days: int = typer.Option(120, "--days", min=1, help="number of days simulated"),
    instances_per_day: int = typer.Option(200, "--instances-per-day", min=0, help="mean new evaluations per day"),
    seed: int = typer.Option(None, "--seed", help="random seed (default: setting CHURN_SEED)"),
    warehouse: str = typer.Option(None, "--warehouse", help="warehouse root for this command (default: CHURN_WAREHOUSE)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing raw dataset"),
    if_missing: bool = typer.Option(False, "--if-missing", help="do nothing when raw data exist (one-shot seeding, "
                                    "e.g. the compose stack's churn-seed)"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
) -> None:
    """Simulate trials of a Jira-like product and write the raw evaluations and events tables."""
    settings: Settings = ctx.obj
    if warehouse:  # this command only: a copy of the settings, never the process environment
        settings = Settings(**{**settings.model_dump(), "warehouse": warehouse})
    today = datetime.now(UTC).date()
    first = run(lambda: parse_day(start, "--start")) if start else today - timedelta(days=days - 1)
    if if_missing and not overwrite and existing_raw(settings):
        typer.echo(f"raw data exist under {settings.warehouse}: nothing simulated (--if-missing)")
        return
    try:
        summary = simulate(first, days, instances_per_day, settings.seed if seed is None else seed,
                           settings, progress=progress, overwrite=overwrite)
    except FileExistsError as error:
        typer.secho(str(error), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from error
    typer.echo(
        f"simulated {summary['start']} .. {summary['end']}: {summary['instances']:,} instances, "
        f"{summary['events']:,} events ({summary['week1_events_per_instance']} in week 1 per instance) "
        f"in {summary['seconds']} s\n"
        f"conversion: {summary['conversion_rate_true']:.1%} true, {summary['conversion_rate_known']:.1%} known so far "
        f"({summary['conversions_known']:,} converted_date values)\n"
        f"evaluations -> {summary['evaluations_path']}\n"
        f"events      -> {summary['events_path']}/dt=*/\n"
        f"truth       -> {summary['truth_path']} (simulator only, never a feature)"
    )


def demo_command(
    ctx: typer.Context,
    days: int = typer.Option(91, "--days", min=60, help="simulated days of trials (91: two 30-day halves of "
                             "history, a first model on the older one, and the backfill)"),
    instances_per_day: int = typer.Option(150, "--instances-per-day", min=50, help="new trials per day"),
    backfill_days: int = typer.Option(
        2,
        "--backfill-days",
        min=1,
        max=14,
        help="last days run through `airflow backfill create` (one Spark start each)",
    ),
    port: int = typer.Option(
        None, "--port", help="api-server port (default: one of this checkout's own, a free one if it is taken)"
    ),
    fresh: bool = typer.Option(
        True, "--fresh/--keep", help="clear the demo's tables and its Airflow metadata DB first"
    ),
) -> None:
    """Simulate trials and run features, retrain and scoring through the Airflow DAGs; print the results."""
    from churn.dev.airflow_local import AirflowNotHealthy
    from churn.dev.metadata_db import MetadataDbError
    from churn.dev.ports import checkout_port

    try:
        settings: Settings = ctx.obj
        summary = run_demo(settings, days, instances_per_day, backfill_days, port or checkout_port(20000), fresh)
    except (DemoFailed, AirflowNotHealthy, MetadataDbError) as exc:
        typer.secho(f"demo failed: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.secho("interrupted; every Airflow process the demo started was stopped", fg="yellow", err=True)
        raise typer.Exit(130) from None
    print_summary(summary)


airflow_app = typer.Typer(
    help="The project's local Airflow (PostgreSQL metadata DB, AIRFLOW_HOME=.airflow).",
    no_args_is_help=True,
    add_completion=False,
)


def _local(settings: Settings, port: int | None = None) -> LocalAirflow:
    """This checkout's installation, from the command's settings (its port, its metadata DB)."""
    return LocalAirflow(port=port or settings.airflow_port, db=metadata_database(settings.airflow_db_url, DEFAULT_HOME))


@airflow_app.command("serve")
def serve_command(ctx: typer.Context,
                  port: int = typer.Option(None, help="api-server port (default: setting CHURN_AIRFLOW_PORT, 8080)")) -> None:
    """Start scheduler, dag-processor, api-server and triggerer; print the URL and login; Ctrl-C stops them."""
    local = _local(ctx.obj, port)
    print(f"starting Airflow (AIRFLOW_HOME={local.home}, metadata DB: {local.db.describe()})")
    try:
        with local.running(UI_COMPONENTS):
            print(f"\nAirflow UI: {local.url}")
            print(f"log in as '{ADMIN_USER}' with password '{local.admin_password()}' (from {local.password_file})")
            print("DAGs: churn_features, churn_retrain, churn_scoring, churn_monitoring, churn_outreach; "
                  "process logs: .airflow/logs/*.out")
            print('other shell, same installation (while this runs): eval "$(churn airflow env)"; '
                  'airflow dags list')
            paused = _paused_dags(local)
            if paused:
                print(
                    f"paused (e.g. by `make demo`): {', '.join(paused)}; they run nothing, not even backfills, "
                    f"until unpaused: airflow dags unpause <dag_id>, or the toggle in the UI"
                )
            print("Ctrl-C stops everything.")
            while all(p.poll() is None for p in local.processes.values()):
                time.sleep(1)
            dead = {n: p.returncode for n, p in local.processes.items() if p.poll() is not None}
            print(f"an Airflow process exited ({dead}); stopping the rest", file=sys.stderr)
            raise typer.Exit(1)
    except KeyboardInterrupt:
        print("\nstopped")
    except AirflowNotHealthy as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None


def _paused_dags(local: LocalAirflow, timeout: float = 60) -> list[str]:
    """Paused DAGs once the dag-processor has registered ours (empty if it takes too long)."""
    deadline = time.monotonic() + timeout
    try:
        token = local.token()
        while time.monotonic() < deadline:
            dags = local.api("GET", "/dags?limit=100", token=token)["dags"]
            if dags:
                return sorted(d["dag_id"] for d in dags if d["is_paused"])
            time.sleep(2)
    except (OSError, RuntimeError, KeyError):
        pass
    return []


@airflow_app.command("env")
def env_command(ctx: typer.Context,
                port: int = typer.Option(None, help="api-server port (default: setting CHURN_AIRFLOW_PORT, 8080)")) -> None:
    """Print `export` lines that point the `airflow` CLI at this installation."""
    import shlex

    local = _local(ctx.obj, port)
    if isinstance(local.db, EmbeddedPostgres):
        local.db.port = local.db.running_port() or 0
        if not local.db.port:
            print("# the metadata DB runs while `make airflow` (or the demo) runs: start it first", file=sys.stderr)
    for key, value in sorted(local.env().items()):
        if key.startswith(("AIRFLOW", "CHURN_")) or key == "PYTHONPATH":
            print(f"export {key}={shlex.quote(value)}")


@airflow_app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run_airflow_command(ctx: typer.Context) -> None:
    """Run an `airflow` CLI command against this installation, e.g. `airflow backfill create …`."""
    local = _local(ctx.obj)
    was_running = isinstance(local.db, EmbeddedPostgres) and local.db.running_port() is not None
    local.db.start()
    try:
        code = local.airflow(*ctx.args, check=False).returncode
    finally:
        if not was_running:
            local.db.stop()
    raise typer.Exit(code)


@airflow_app.command("stop")
def stop_command(ctx: typer.Context) -> None:
    """Stop processes a killed `serve`/`demo` left behind (only ours, by recorded process group), and our
    embedded metadata DB."""
    local = _local(ctx.obj)
    local.stop_stale()
    local.db.stop()

