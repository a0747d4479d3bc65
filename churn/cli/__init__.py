"""`churn` command line: one Typer app that only wires; it builds one Settings and passes it down.

Importing this module loads no model library (xgboost, scikit-learn, matplotlib): each command imports
what it runs when it runs, so ``churn --help`` answers at once.
"""

from __future__ import annotations

import logging

import typer

from churn.cli import jobs as job_commands
from churn.cli import models as model_commands
from churn.tools import catalog, demo, doctor, query, simulator

app = typer.Typer(help="Churn prediction for SaaS trials.", no_args_is_help=True, add_completion=False)


@app.callback()
def _main(ctx: typer.Context, verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging")) -> None:
    """Settings come from CHURN_* variables and the project's .env (docs/configuration.md)."""
    from pydantic import ValidationError

    from churn.core.settings import Settings

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        ctx.obj = Settings()
    except ValidationError as exc:
        problems = "; ".join(f"CHURN_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        if ctx.invoked_subcommand == "doctor":  # the doctor reports it as its first check
            ctx.obj = ValueError(f"invalid setting: {problems}")
            return
        typer.secho(f"error: invalid setting: {problems} (see docs/configuration.md)", fg="red", err=True)
        raise typer.Exit(2) from None


app.command("simulate")(simulator.simulate_command)
app.command("features")(job_commands.features_command)
app.command("train")(job_commands.train_command)
app.command("score")(job_commands.score_command)
app.command("monitor")(job_commands.monitor_command)
app.command("maintain")(job_commands.maintain_command)
app.add_typer(model_commands.app, name="models")
app.command("query")(query.query_command)
app.add_typer(catalog.app, name="catalog")
app.command("doctor")(doctor.doctor_command)
app.command("demo")(demo.demo_command)

if __name__ == "__main__":
    app()
