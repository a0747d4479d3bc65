"""What a user reads names what exists: every DAG wherever DAGs are listed to unpause, every table wherever the
tables are listed, no asset or subcommand that is gone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from churn.cli import app
from churn.core.settings import PROJECT_ROOT
from churn.core.tables import TABLES

DAGS = sorted(p.stem for p in (PROJECT_ROOT / "dags").glob("churn_*.py"))
DOCS = [*(PROJECT_ROOT / "docs").glob("*.md"), PROJECT_ROOT / "README.md", PROJECT_ROOT / "docker-compose.yml"]


def _paragraphs(path: Path) -> list[str]:
    return re.split(r"\n\s*\n", path.read_text())


def test_every_place_that_says_unpause_names_every_dag():
    found = 0
    for path in DOCS:
        for text in _paragraphs(path):
            if re.search(r"\bunpause\b", text, re.I) and re.search(r"churn_\w+.*churn_\w+", text, re.S):
                found += 1
                missing = [d for d in DAGS if d not in text]
                assert not missing, f"{path.name}: a list of DAGs to unpause leaves out {missing}:\n{text}"
    assert found >= 3  # compose header, catalog.md, operations.md


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_no_doc_counts_the_dags_wrong(path):
    words = {3: "three", 4: "four", 6: "six"}
    for n, word in words.items():
        assert not re.search(rf"(?<!Airflow )\b({word}|{n}) (DAGs|DAG files)\b", path.read_text(), re.I), f"{path.name}: {word} DAGs"


def test_every_table_is_in_the_query_help_and_the_catalog_page():
    help_text = " ".join(CliRunner().invoke(app, ["query", "--help"], terminal_width=200).output.split())
    catalog = (PROJECT_ROOT / "docs" / "catalog.md").read_text()
    rows = {m.group(1) for m in re.finditer(r"^\| `(\w+)`", catalog, re.M)}
    for name in TABLES:
        assert name in help_text, f"`churn query --help` does not name {name}"
        assert name in rows, f"docs/catalog.md's table of tables has no row for {name}"


def test_docs_name_only_assets_that_exist():
    assets = set(TABLES) | {"model_registry"}
    for path in DOCS:
        for name in re.findall(r"asset `(\w+)`", path.read_text()):
            assert name in assets, f"{path.name} names asset {name}, which no DAG declares"


def test_the_catalog_help_names_only_its_subcommands():
    out = CliRunner().invoke(app, ["catalog", "--help"], terminal_width=200).output
    assert "partitions" not in out
    for command in ("ddl", "apply", "recover"):
        assert command in out


def test_the_default_objective_is_the_documented_one():
    from churn.core.settings import Settings

    default = Settings.model_fields["threshold_objective"].default
    models = (PROJECT_ROOT / "docs" / "models.md").read_text()
    assert f"`{default}` (default)" in models
    assert f"default {default}" in (PROJECT_ROOT / ".env.example").read_text()
