"""Settings: environment variables, the project's .env, and docs that name exactly the real settings."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from churn.core.settings import ENV_FILE, PROJECT_ROOT, Settings, join, settings_table_markdown
from churn.core.tables import table_location

FIELDS = {f"CHURN_{name.upper()}" for name in Settings.model_fields}
# Every file a user reads for configuration (docs, README, the compose stack and its example environment).
DOCUMENTS = [*sorted((PROJECT_ROOT / "docs").glob("*.md")), PROJECT_ROOT / "README.md", PROJECT_ROOT / ".env.example",
             PROJECT_ROOT / "docker-compose.yml", PROJECT_ROOT / "Dockerfile"]
CODE = [p for folder in ("churn", "etl_jobs", "models", "dags", "bench") for p in (PROJECT_ROOT / folder).rglob("*.py")]


def test_every_setting_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CHURN_WAREHOUSE", "s3://bucket/prefix/")
    monkeypatch.setenv("CHURN_LABEL_WINDOW_DAYS", "21")
    monkeypatch.setenv("CHURN_EMR_ENTRY_POINT", "s3://bucket/code/build_features.py")
    settings = Settings()
    assert settings.warehouse == "s3://bucket/prefix"
    assert settings.label_window_days == 21
    assert settings.emr_entry_point == "s3://bucket/code/build_features.py"
    assert table_location("instances_w1", settings) == "s3://bucket/prefix/features/instances_w1"
    assert table_location("events", settings) == "s3://bucket/prefix/raw/events"


def test_dotenv_is_the_projects_file_whatever_the_working_directory(monkeypatch, tmp_path):
    assert Settings.model_config["env_file"] == ENV_FILE and ENV_FILE.is_absolute()
    monkeypatch.delenv("CHURN_WAREHOUSE", raising=False)
    monkeypatch.chdir(tmp_path)
    Path(".env").write_text("CHURN_WAREHOUSE=from-the-working-directory\n")  # a worker's cwd: not read
    assert Settings().warehouse != str(tmp_path / "from-the-working-directory")
    other = tmp_path / "project.env"
    other.write_text("CHURN_WAREHOUSE=/data/wh\nCHURN_RAW_EVENTS=/data/events\n")
    settings = Settings(_env_file=other)  # the file format: what ENV_FILE may hold
    assert settings.warehouse == "/data/wh" and table_location("events", settings) == "/data/events"


def test_invalid_values_are_rejected_with_the_setting_name(monkeypatch):
    monkeypatch.setenv("CHURN_LABEL_WINDOW_DAYS", "zero")
    with pytest.raises(ValidationError, match="label_window_days"):
        Settings()


def test_configuration_docs_list_every_setting():
    documented = (PROJECT_ROOT / "docs" / "configuration.md").read_text()
    assert settings_table_markdown() in documented, "regenerate with: python -m churn.core.settings"


def test_docs_name_no_setting_that_does_not_exist():
    named = {}
    for path in DOCUMENTS:
        for name in re.findall(r"\bCHURN_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()):
            named.setdefault(name, path.name)
    unknown = {name: where for name, where in named.items() if name not in FIELDS}
    assert not unknown, f"documented CHURN_* variables that are no Settings field: {unknown}"
    missing = FIELDS - set(re.findall(r"\bCHURN_[A-Z0-9_]*[A-Z0-9]\b", (PROJECT_ROOT / ".env.example").read_text()))
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_code_reads_settings_only_through_the_settings_object():
    """No CHURN_* read from the environment and no getattr on settings outside churn/core/settings.py."""
    offenders = []
    for path in CODE:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("CHURN_"):
                parent_calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and node in ast.walk(n)]
                if any(ast.unparse(c.func).endswith(("environ.get", "getenv", "environ.setdefault")) for c in parent_calls):
                    offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} reads {node.value}")
            if isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("environ"):
                key = node.slice
                if isinstance(key, ast.Constant) and str(key.value).startswith("CHURN_"):
                    offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} touches os.environ[{key.value}]")
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "getattr" and node.args:
                if "settings" in ast.unparse(node.args[0]).lower():
                    offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} getattr on settings")
    assert not offenders, offenders


def test_join_handles_uris_and_folders():
    assert join("s3://b/p/", "a", "/b/") == "s3://b/p/a/b"
    assert join("/tmp/x", "a") == "/tmp/x/a"


def test_the_deployment_picks_the_catalog_and_an_explicit_setting_wins(monkeypatch):
    monkeypatch.delenv("CHURN_TABLE_CATALOG", raising=False)
    assert Settings(_env_file=None).table_catalog == "sql"
    assert Settings(_env_file=None, deployment="aws", warehouse="s3://b/p").table_catalog == "glue"
    assert Settings(_env_file=None, deployment="aws", warehouse="s3://b/p", table_catalog="sql").table_catalog == "sql"
    monkeypatch.setenv("CHURN_TABLE_CATALOG", "")  # .env.example's empty value: the deployment's
    assert Settings(_env_file=None, deployment="aws", warehouse="s3://b/p").table_catalog == "glue"


def test_catalog_apply_of_a_local_deployment_registers_nothing_in_glue(tmp_path, monkeypatch):
    from churn.ops.catalog import apply_catalog

    monkeypatch.delenv("CHURN_TABLE_CATALOG", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # any AWS call would fail here
    settings = Settings(_env_file=None, warehouse=str(tmp_path / "warehouse"))
    result = apply_catalog(settings, ["events", "evaluations", "instances_w1"])
    assert result["events"].startswith("not registered") and result["instances_w1"] == "created"


@pytest.mark.parametrize(("name", "value"), [
    ("CHURN_PROMOTION_AUC_FLOOR", "-1"), ("CHURN_PROMOTION_AUC_FLOOR", "0.3"), ("CHURN_PROMOTION_AUC_FLOOR", "1"),
    ("CHURN_PROMOTION_AUC_TOLERANCE", "0.5"), ("CHURN_LABEL_RATE_TOLERANCE", "1"),
    ("CHURN_CHAMPION_AUC_COLLAPSE", "2"), ("CHURN_MONITORING_AUC_DROP_ALERT", "0"),
    ("CHURN_LABEL_RATE_RANGE", "0,1"),
])
def test_a_setting_cannot_switch_a_guard_off(monkeypatch, name, value):
    """A floor below chance, a tolerance wider than any difference, a range of every rate: each would let any model
    (one trained on shuffled labels) or any label change through."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.removeprefix("CHURN_").lower()):
        Settings(_env_file=None)


def test_a_mistyped_variable_is_a_warning_with_the_setting_it_meant(caplog):
    from churn.core.settings import unknown_variables

    lines = unknown_variables({"CHURN_WAREHOSE": "/x", "CHURN_WAREHOUSE": "/y", "CHURN_FROBNICATE": "1",
                               "CHURN_SPARK_CLASS_ARCHIVE_DUMP": "/a.jsa", "HOME": "/root"})
    assert lines == ["CHURN_FROBNICATE is not a setting and is ignored (docs/configuration.md lists every setting)",
                     "CHURN_WAREHOSE is not a setting and is ignored: did you mean CHURN_WAREHOUSE?"]


def test_the_cli_warns_once_about_an_unknown_variable(tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("CHURN_")}
    env |= {"CHURN_WAREHOUSE": str(tmp_path), "CHURN_LABEL_WINDOW_DAY": "10"}
    result = subprocess.run([sys.executable, "-c", "from churn.cli import main; main()", "models", "list"], env=env, capture_output=True,
                            text=True, timeout=120)
    warned = [ln for ln in result.stderr.splitlines() if "CHURN_LABEL_WINDOW_DAY " in ln]
    assert len(warned) == 1 and "did you mean CHURN_LABEL_WINDOW_DAYS?" in warned[0], result.stderr
