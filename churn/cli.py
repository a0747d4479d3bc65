"""`churn` command line: one Typer app; each command lives next to the code it runs."""

from __future__ import annotations

import importlib
import logging

import typer

app = typer.Typer(help="Churn prediction for SaaS trials.", no_args_is_help=True, add_completion=False)

# (module, attribute, command name): a Typer function is registered as a command, a Typer app as a group.
COMMANDS = [
    ("churn.simulator", "simulate_command", "simulate"),
    ("etl_jobs.build_features", "features_command", "features"),
    ("models.train", "train_command", "train"),
    ("models.score", "score_command", "score"),
    ("models.monitor", "monitor_command", "monitor"),
    ("models.registry_cli", "app", "models"),
    ("churn.query", "query_command", "query"),
    ("churn.catalog", "app", "catalog"),
    ("churn.demo", "demo_command", "demo"),
]


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="debug logging")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _register() -> None:
    for module_name, attribute, name in COMMANDS:
        module = importlib.import_module(module_name)
        target = getattr(module, attribute)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)


_register()

if __name__ == "__main__":
    app()
