"""`churn` command line: one Typer app that only wires; it builds one Settings and passes it down.

Importing this module loads no model library (xgboost, scikit-learn, matplotlib): each command imports
what it runs when it runs, so ``churn --help`` answers at once.
"""

from __future__ import annotations

import logging
import sys

import typer

from churn.cli import dev as dev_commands
from churn.cli import jobs as job_commands
from churn.cli import models as model_commands
from churn.cli import ops as ops_commands

QUIET_LOGGERS = ("botocore", "boto3", "aiobotocore", "s3fs", "urllib3", "httpx", "pyiceberg")

app = typer.Typer(help="Churn prediction for SaaS trials.", no_args_is_help=True, add_completion=False)


@app.callback()
def _main(ctx: typer.Context, verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging")) -> None:
    """Settings come from CHURN_* variables and the project's .env (docs/configuration.md)."""
    from pydantic import ValidationError

    from churn.core.settings import Settings

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not verbose:  # the AWS SDKs' and HTTP clients' INFO lines ("Found credentials …" per client) are not ours
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        ctx.obj = Settings()
    except ValidationError as exc:
        problems = "; ".join(f"CHURN_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        if ctx.invoked_subcommand == "doctor":  # the doctor reports it as its first check
            ctx.obj = ValueError(f"invalid setting: {problems}")
            return
        typer.secho(f"error: invalid setting: {problems} (see docs/configuration.md)", fg="red", err=True)
        raise typer.Exit(2) from None  # output.BAD_INPUT


app.command("simulate")(dev_commands.simulate_command)
app.command("features")(job_commands.features_command)
app.command("train")(job_commands.train_command)
app.command("score")(job_commands.score_command)
app.add_typer(job_commands.monitor_app, name="monitor")
app.add_typer(job_commands.outreach_app, name="outreach")
app.command("maintain")(job_commands.maintain_command)
app.add_typer(model_commands.app, name="models")
app.command("query")(ops_commands.query_command)
app.add_typer(ops_commands.catalog_app, name="catalog")
app.command("doctor")(ops_commands.doctor_command)
app.command("demo")(dev_commands.demo_command)
app.add_typer(dev_commands.airflow_app, name="airflow")

def main(argv: list[str] | None = None) -> None:
    """The ``churn`` command: every error ends as one line on stderr and an exit code (see churn.cli.output);
    ``--verbose`` (``-v``) before the command shows the traceback instead."""
    from churn.cli.output import BAD_INPUT, FAILED_RUN, describe

    # the click that typer runs on (typer >= 0.22 vendors its own): its UsageError is BadParameter's base
    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
    no_args_is_help = getattr(sys.modules[usage_error.__module__], "NoArgsIsHelpError", ())

    argv = sys.argv[1:] if argv is None else list(argv)
    verbose = bool({"-v", "--verbose"} & set(argv))
    try:
        code = app(args=argv, prog_name="churn", standalone_mode=False)
    except no_args_is_help as exc:
        exc.show()
        code = BAD_INPUT
    except usage_error as exc:  # one line, not click's box: which argument, and where the help is
        command = exc.ctx.command_path if exc.ctx else "churn"
        typer.secho(f"error: {exc.format_message()} (see `{command} --help`)", fg="red", err=True)
        code = BAD_INPUT
    except typer.Abort:
        typer.secho("error: aborted", fg="red", err=True)
        code = FAILED_RUN
    except Exception as exc:
        if verbose:
            raise
        code, message = describe(exc)
        typer.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
