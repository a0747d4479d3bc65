"""`churn models list | show | promote | rollback | history`: look at and steer the model registry."""

from __future__ import annotations

import getpass
import json
import socket
import sys

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from churn.core.text import inert, plain

app = typer.Typer(help="Model registry: versions, champion / challenger, promotion history.", no_args_is_help=True)


def console(stderr: bool = False) -> Console:
    """Per call: picks up the terminal width (COLUMNS) of this invocation. No markup: every line holds data
    (versions, reasons people wrote), shown as it is (churn.core.text)."""
    return Console(stderr=stderr, markup=False, highlight=False)


def _registry(ctx: typer.Context):
    from churn.core.storage import require_warehouse
    from churn.models.registry import Registry

    require_warehouse(ctx.obj)
    return Registry(ctx.obj)


def _who() -> str:
    """Who changes the champion by hand, as recorded in the history."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _confirm(question: str, yes: bool) -> None:
    """Ask before changing the champion; without a terminal, --yes is the only way to say yes."""
    if yes:
        return
    if not sys.stdin.isatty():
        typer.secho(f"error: {question} not confirmed: add --yes to confirm without a prompt", fg="red", err=True)
        raise typer.Exit(code=2)
    if not typer.confirm(question, default=False):
        console(stderr=True).print("nothing changed")
        raise typer.Exit(code=1)


def _registry_error() -> type[Exception]:
    from churn.models.registry import RegistryError

    return RegistryError


def _resolve(registry, version: str) -> str:
    if version in ("champion", "challenger"):
        record = registry.alias(version)
        if record is None:
            raise _registry_error()(f"no {version} under {registry.root}")
        return record["version"]
    return version


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg="red", err=True)  # one line, never wrapped
    raise typer.Exit(code=1)


JsonOption = typer.Option(False, "--json", help="print the records as JSON (for scripts)")


@app.command("list")
def list_command(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Every registered version with its validation metrics and aliases."""
    registry = _registry(ctx)
    aliases = {name: (registry.alias(name) or {}).get("version") for name in ("champion", "challenger")}
    records = []  # one record per version, shown as JSON or as the table
    for version in registry.versions():
        held = [n for n, v in aliases.items() if v == version]
        try:
            meta = registry.metadata(version)
        except _registry_error() as exc:
            records.append({"version": version, "aliases": held, "damaged": str(exc)})
            continue
        records.append({"version": version, "aliases": held,
                        "model": meta.get("candidate"), "rows": meta.get("rows", {}).get("total"),
                        "metrics": meta.get("metrics", {})})
    if as_json:
        typer.echo(json.dumps(records, indent=1, default=str))
        return
    table = Table(title=f"models at {registry.root}", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("version", "alias", "model", "rows", "AUC", "logloss"):  # fits 80 columns; more in `show`
        table.add_column(column, no_wrap=True, min_width=len(column))
    for r in records:
        alias = ", ".join(r["aliases"])
        if "damaged" in r:
            table.add_row(plain(r["version"]), alias, plain(f"damaged: {r['damaged']}"), "", "", "")
            continue
        m = r["metrics"]
        table.add_row(plain(r["version"]), alias, plain(r["model"] or ""), str(r["rows"] if r["rows"] is not None else ""),
                      f"{m.get('roc_auc', float('nan')):.3f}", f"{m.get('log_loss', float('nan')):.3f}")
    console().print(table)
    for problem in registry.problems():
        console(stderr=True).print(Text.assemble(("warning:", "yellow"), " ", plain(problem)))


@app.command("repair")
def repair_command(ctx: typer.Context) -> None:
    """Move damaged history files aside (to history/damaged/); the champion is then derived from the rest."""
    registry = _registry(ctx)
    moved = registry.repair()
    for name in moved:
        console().print(f"moved {name} to history/damaged/")
    champion = registry.alias("champion")
    console().print(f"{len(moved)} damaged file(s) moved; champion: {champion['version'] if champion else 'none'}")


@app.command("show")
def show_command(
    ctx: typer.Context,
    version: str = typer.Argument("champion", help="a version id, 'champion' or 'challenger'"),
    verify: bool = typer.Option(True, help="check the sha256 of every artifact"),
) -> None:
    """Metadata of one version (training window, rows, metrics, features, checksums)."""
    registry = _registry(ctx)
    try:
        version = _resolve(registry, version)
        meta = registry.verify(version) if verify else registry.metadata(version)
    except _registry_error() as exc:
        _fail(exc)
    shown = {k: meta[k] for k in ("version", "run_date", "candidate", "kind", "training_window", "rows", "label_rate",
                                  "metrics", "threshold", "calibration", "decision", "data_fingerprint",
                                  "code_version") if k in meta}
    shown["features"] = [f"{f['name']}:{f['dtype']}" for f in meta["features"]]
    shown["artifacts"] = {name: rec["sha256"] for name, rec in meta["artifacts"].items()}
    shown["verified"] = verify
    shown["report"] = registry.artifact_path(version, "report.html")
    typer.echo(json.dumps(shown, indent=1, default=str))


@app.command("promote")
def promote_command(
    ctx: typer.Context,
    version: str = typer.Argument(..., help="version id (or 'challenger') to make champion"),
    reason: str = typer.Option(..., "--reason", help="why, recorded in the history with who and when"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
) -> None:
    """Make a version champion by hand (its artifacts are verified first); asks first, records who and why."""
    registry = _registry(ctx)
    try:
        target = _resolve(registry, version)
        current = (registry.alias("champion") or {}).get("version")
        if current != target:
            _confirm(f"make {target} the champion (now {current or 'none'})?", yes)
        event = registry.promote(target, reason, by=_who())
    except _registry_error() as exc:
        _fail(exc)
    if event["event"] == "noop":
        console().print(inert(event["reason"]) + ": nothing changed")
        return
    console().print(f"champion is now {event['version']} (was {event['previous_champion']})")


@app.command("rollback")
def rollback_command(
    ctx: typer.Context,
    reason: str = typer.Option(..., "--reason", help="why, recorded in the history with who and when"),
    to: str = typer.Option(None, "--to", help="version to restore; default: the champion before the current one"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
) -> None:
    """Restore the previous champion (or a given version); asks first, records who and why."""
    registry = _registry(ctx)
    try:
        current = (registry.alias("champion") or {}).get("version")
        _confirm(f"roll the champion back from {current or 'none'} to {to or 'its predecessor'}?", yes)
        event = registry.rollback(to, reason=reason, by=_who())
    except _registry_error() as exc:
        _fail(exc)
    console().print(f"champion is now {event['version']} (rolled back from {event['previous_champion']})")


@app.command("history")
def history_command(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """The append-only log of promotions, challengers and rollbacks: one line per event, its reason wrapped
    under it (fits any terminal width)."""
    import shutil
    import textwrap

    events = _registry(ctx).history()
    if as_json:
        typer.echo(json.dumps(events, indent=1, default=str))
        return
    width = max(40, shutil.get_terminal_size((100, 24)).columns)
    out = console()
    for e in events:
        previous = f" (was {e['previous_champion']})" if e.get("previous_champion") else ""
        out.print(plain(f"{e['at'][:19]}  {e['event']:<10} {e['version']}{previous}  by {e.get('by', '')}"),
                  soft_wrap=True)
        for line in textwrap.wrap(e.get("reason", ""), width - 4) or [""]:
            out.print(plain("    " + line), soft_wrap=True)
