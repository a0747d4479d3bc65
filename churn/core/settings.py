"""One typed settings object for the whole system.

Every field can be set as an environment variable with the ``CHURN_`` prefix (``CHURN_WAREHOUSE``,
``CHURN_LABEL_WINDOW_DAYS`` …) or in the project's ``.env`` file (:data:`ENV_FILE`, an absolute path:
the same file for a shell, a test and an Airflow worker, whatever their working directory).
Environment variables win over ``.env``. The deployment (``local`` or ``aws``) picks the resource set
(the tables' catalog: SQL locally, Glue on AWS) and never what is computed.

There is no global instance: each entry point (a CLI command, a DAG task, a benchmark) builds one
``Settings()`` and passes it down, so nothing changes settings behind another caller's back.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# A checkout reads its own .env; an installed package (a wheel on MWAA, an EMR job) has no project
# folder and takes its settings from the environment only.
ENV_FILE = PROJECT_ROOT / ".env" if (PROJECT_ROOT / "pyproject.toml").is_file() else None
# Package data (the folder sql/ installed as the package churn.sql): the same files in a checkout, an
# editable install and a wheel. Installed wheels are unzipped, so this is a real folder.
SQL_DIR = Path(str(files("churn.sql")))
DEFAULT_FEATURE_CONFIG = SQL_DIR / "features" / "feature_config.yaml"


class Settings(BaseSettings):
    """Where data lives, how features are windowed, and how models are chosen."""

    model_config = SettingsConfigDict(env_prefix="CHURN_", env_file=ENV_FILE, extra="ignore")

    deployment: Literal["local", "aws"] = Field("local", description="local folder + local Spark, or S3 + EMR")
    warehouse: str = Field("warehouse", description="root of every table: a folder or s3://bucket/prefix")
    raw_evaluations: str | None = Field(None, description="evaluations table location (default {warehouse}/raw/evaluations)")
    raw_events: str | None = Field(None, description="events table location (default {warehouse}/raw/events)")
    feature_config: str | None = Field(
        None, description="YAML: which event types feed which count feature; a path or s3:// URI "
        "(default: the packaged sql/features/feature_config.yaml)",
    )
    first_week_days: int = Field(7, ge=1, description="length of the observed first week")
    label_window_days: int = Field(30, ge=1, description="days after eval start within which a conversion counts as retained")
    training_window_days: int = Field(90, ge=7, description="days of instances_modeling partitions per retrain")
    validation_days: int = Field(14, ge=1, description="most recent cohorts (by eval_start_date) held out for validation")
    threshold_objective: str = Field(
        "top:0.2", description="which trials are flagged at_risk: top:<fraction> (the riskiest share of each day; "
        "the default flags the riskiest 20% at any base rate), top:<N> (the N riskiest per day), f1, f2 or "
        "fbeta:<b> (F-beta of at-risk), cost:<r> (a missed at-risk trial costs r contacts)",
    )
    promotion_auc_tolerance: float = Field(0.005, ge=0, le=0.05, description="a challenger may be this much AUC below the champion")
    promotion_auc_floor: float = Field(
        0.60, ge=0.5, lt=1, description="absolute AUC a model must clear to become champion (0.5 is chance: below it the "
        "floor would let a model that ranks worse than chance through)")
    label_rate_tolerance: float = Field(
        0.10, gt=0, le=0.5, description="a training window whose label rate (overall or of a cohort week) moves this "
        "far from the champion's training data is held for a person to promote"
    )
    label_rate_range: str = Field(
        "0.01,0.60", description="plausible label rates min,max; a first model outside it is held for a person"
    )
    champion_auc_collapse: float = Field(
        0.15, gt=0, le=0.5, description="the champion's AUC on the new rows this far below its validation AUC means the "
        "labels changed: the new model is held for a person"
    )
    model_name: str = Field("churn_w1", description="registry name of the model")
    seed: int = Field(27, description="random seed for simulation and training")
    s3_endpoint_url: str | None = Field(None, description="S3 API endpoint (MinIO / moto); empty for AWS")
    aws_region: str = Field("us-east-1", description="AWS region for S3, Glue and Athena")
    feature_engine: Literal["spark", "duckdb"] = Field(
        "spark", description="engine of the feature job: spark (clusters, EMR) or duckdb (one machine, no Java)"
    )
    spark_master: str = Field("local[2]", description="Spark master URL for in-process runs")
    spark_shuffle_partitions: int = Field(
        32, ge=1,
        description="spark.sql.shuffle.partitions at most: a feature chunk takes one per 96 MB of raw Parquet it reads, "
                    "at least 4 (a 30-day chunk at 10k trials/day deduplicates in memory with 32; a daily run is "
                    "slower with more than it needs: docs/benchmarks.md)")
    spark_driver_memory: str = Field(
        "4g", pattern=r"^[0-9]+[mMgG]$",
        description="spark.driver.memory: the heap of an in-process (local) Spark, which is driver and executor at "
                    "once; for EMR jobs the driver's (docs/operations.md, sizing)")
    spark_executor_memory: str = Field(
        "14g", pattern=r"^[0-9]+[mMgG]$", description="spark.executor.memory of cluster (EMR) executors")
    spark_executor_cores: int = Field(4, ge=1, description="spark.executor.cores of cluster (EMR) executors")
    duckdb_memory_limit: str | None = Field(
        None, pattern=r"^([0-9]+(\.[0-9]+)?\s*[KMGT]i?B)?$",
        description="DuckDB's memory_limit (e.g. 8GB; beyond it DuckDB spills to disk); empty: DuckDB's default, "
                    "80% of the machine's memory (a 10k trials/day 90-day rebuild peaked at 20.8 GB on 24 GiB)")
    spark_short_run_mb: int = Field(
        150, ge=0,
        description="a local Spark feature run whose largest chunk reads less raw data than this (MB) starts its JVM "
                    "with the quick compiler only: a daily run at 1k trials/day is ~7 s faster, a 300 MB chunk twice "
                    "as slow (docs/benchmarks.md); 0: never")
    spark_class_archive_dir: str = Field(
        "~/.cache/churn",
        description="folder of the JVM class-data archive that makes a local Spark start ~2-3 s faster (written by "
                    "`make install`, i.e. `python -m churn.dev.spark_classes`); empty: no archive")
    feature_chunk_days: int = Field(
        30, ge=1,
        description="a feature range is built and committed in chunks of this many days: memory is bounded by the "
                    "chunk, and a rerun after a crash resumes at the first chunk not committed with the same inputs")
    feature_chunk_max_mb: float = Field(
        4096, gt=0,
        description="raw Parquet a feature chunk may read: a range whose chunks would read more is cut into shorter "
                    "chunks (halved down to a day), so 50k trials a day builds in the memory and disk that 10k does")
    athena_database: str = Field("churn", description="Glue/Athena database (Iceberg namespace) of the tables")
    table_catalog: Literal["sql", "glue"] | None = Field(
        None,
        description="Iceberg catalog of the output tables: sql (SQLite or PostgreSQL) or glue (Athena); "
                    "empty: what the deployment picks, glue for aws, sql for local")
    table_catalog_uri: str | None = Field(
        None, description="SQLAlchemy URL of the sql catalog (default sqlite:///{warehouse}/_catalog/iceberg.db), "
        "e.g. postgresql+psycopg2://postgres@127.0.0.1:5432/churn",
    )
    snapshot_retention_days: int = Field(
        7, ge=1, description="table snapshots (and data files only they use) older than this are removed by maintenance"
    )
    athena_workgroup: str = Field("primary", description="Athena workgroup")
    athena_output: str | None = Field(None, description="s3:// location for Athena query results")
    aws_endpoint_url: str | None = Field(None, description="Glue/Athena API endpoint (moto in tests); empty for AWS")
    spark_runner: Literal["local", "emr_serverless"] = Field(
        "local", description="where DAG feature tasks run Spark: in the worker (local) or on EMR Serverless"
    )
    emr_application_id: str | None = Field(None, description="EMR Serverless application id (spark_runner=emr_serverless)")
    emr_execution_role_arn: str | None = Field(None, description="IAM role EMR Serverless jobs run as")
    emr_entry_point: str | None = Field(
        None, description="s3:// path of the uploaded entry point, build_features.py (make emr-bundle; default "
        "{warehouse}/code/build_features.py)"
    )
    emr_archive: str | None = Field(
        None, description="s3:// path of the packed virtual environment with the project (make emr-bundle; default "
        "{warehouse}/code/churn-env.tar.gz), unpacked as ./environment on the driver and executors"
    )
    emr_log_uri: str | None = Field(
        None, description="s3:// folder of the EMR job logs (default {warehouse}/logs/emr)"
    )
    emr_timeout_minutes: int = Field(
        240, ge=5, description="an EMR feature job running longer is cancelled (by EMR and by the Airflow task)"
    )
    emr_spark_submit_parameters: str = Field(
        "", description="extra spark-submit parameters of EMR jobs, e.g. --conf spark.executor.memory=8g"
    )
    monitoring_psi_alert: float = Field(0.25, gt=0, le=5, description="a feature or score PSI above this raises a drift alert")
    monitoring_drift_p_value: float = Field(
        0.0005, gt=0, le=1,
        description="a drift alert also needs a shift that large to be unlikely by chance at the day's sample size: "
                    "chi-square p-value below this (0.0005 = 1% a day spread over ~20 features; 1 disables the test)")
    monitoring_auc_drop_alert: float = Field(
        0.05, gt=0, le=0.5, description="realised AUC this far below the model's validation AUC raises an alert"
    )
    outreach_channels: str = Field(
        "email:0.5:500,chat:3:60,push:0.1:300,call:20:30",
        description="outreach channels as name:cost:daily_capacity, comma-separated (cost in the unit of "
                    "outreach_conversion_value; a capacity of 0 pauses a channel)")
    outreach_conversion_value: float = Field(
        250.0, gt=0, description="what one saved conversion is worth, in the unit of the channel costs")
    outreach_holdout: float = Field(
        0.10, ge=0, lt=1, description="share of eligible trials randomised to no contact, to measure each channel")
    outreach_forgetting: float = Field(
        0.995, gt=0, le=1,
        description="weight of yesterday's policy posterior in today's update (lambda-learner's delta; 1: never "
                    "forget; 0.995 remembers ~200 daily batches, so effects that change are followed within months)")
    outreach_prior_precision: float = Field(
        4.0, gt=0, description="precision of every policy coefficient before any outcome (lambda-learner's penalty)")
    alert_notifiers: str = Field(
        "", description="Airflow Notifiers that failures and monitoring alerts go to, as JSON: a list of "
        "{\"class\": \"airflow.providers.slack.notifications.slack.SlackNotifier\", \"kwargs\": {...}} (Slack, "
        "SMTP, SNS, apprise providers); the alert callback is one more", )
    alert_callback: str | None = Field(
        None,
        description="module:function called with the Airflow context when a task fails, and with "
        "{'monitoring_alerts': [...]} when monitoring raises alerts (default: log only)",
    )
    airflow_port: int = Field(8080, ge=1, le=65535, description="port of the local Airflow UI (make airflow, make demo)")
    airflow_db_url: str = Field("", description=(
        "the local Airflow's metadata DB server (make airflow, make demo): empty = this checkout's own embedded "
        "PostgreSQL in .airflow/postgres; or postgresql+psycopg2://user@host:port, on which the checkout gets its "
        "own database churn_airflow_<id>"))

    @model_validator(mode="after")
    def _unknown_variables_warned(self):
        warn_unknown_variables(os.environ)
        return self

    @field_validator("table_catalog", mode="before")
    @classmethod
    def _empty_is_the_deployments(cls, value):
        return None if value == "" else value

    @model_validator(mode="after")
    def _deployment_picks_the_catalog(self):
        """One switch: ``deployment`` chooses the resource set; a setting named explicitly still wins."""
        if self.table_catalog is None:
            object.__setattr__(self, "table_catalog", "glue" if self.deployment == "aws" else "sql")
        return self

    @field_validator("threshold_objective")
    @classmethod
    def _objective(cls, value: str) -> str:
        parse_objective(value)
        return value

    @field_validator("alert_notifiers")
    @classmethod
    def _notifier_specs(cls, value: str) -> str:
        alert_notifier_specs(value)
        return value

    @property
    def notifier_specs(self) -> list[dict]:
        return alert_notifier_specs(self.alert_notifiers)

    @field_validator("label_rate_range")
    @classmethod
    def _rate_range(cls, value: str) -> str:
        try:
            low, high = (float(x) for x in value.split(","))
        except ValueError:
            raise ValueError(f"CHURN_LABEL_RATE_RANGE must be 'min,max' (e.g. 0.01,0.60), got {value!r}") from None
        if not 0 <= low < high <= 1 or (low, high) == (0, 1):  # 0,1 would switch the label guard off
            raise ValueError(f"CHURN_LABEL_RATE_RANGE needs 0 <= min < max <= 1 and not all of 0..1, got {value!r}")
        return value

    @property
    def label_rate_bounds(self) -> tuple[float, float]:
        low, high = (float(x) for x in self.label_rate_range.split(","))
        return low, high

    @field_validator("warehouse")
    @classmethod
    def _absolute_local_root(cls, value: str) -> str:
        if "://" in value:
            return value.rstrip("/")
        return str(Path(value).expanduser().resolve())

    @property
    def is_remote(self) -> bool:
        return self.warehouse.startswith("s3://")

    @property
    def models_path(self) -> str:
        return join(self.warehouse, "models", self.model_name)

    @property
    def emr_code_paths(self) -> dict[str, str]:
        """Where the EMR job's entry point, archive and logs live (settings, or beside the warehouse)."""
        return {
            "entry_point": self.emr_entry_point or join(self.warehouse, "code", "build_features.py"),
            "archive": self.emr_archive or join(self.warehouse, "code", "churn-env.tar.gz"),
            "log_uri": self.emr_log_uri or join(self.warehouse, "logs", "emr"),
        }

    @property
    def truth_path(self) -> str:
        """Simulator ground truth (true conversion probabilities); never a feature."""
        return join(self.warehouse, "simulation", "truth")


# CHURN_* variables that are no setting but are read on purpose (the JVM class archive's one-off dump)
NOT_SETTINGS = frozenset({"CHURN_SPARK_CLASS_ARCHIVE_DUMP"})
_warned: set[str] = set()


def unknown_variables(environ) -> list[str]:
    """One line per ``CHURN_*`` variable that no setting reads, with the nearest setting's name: a mistyped
    ``CHURN_WAREHOSE`` would otherwise be silently ignored while the default warehouse is used."""
    import difflib

    known = [f"CHURN_{name.upper()}" for name in Settings.model_fields]
    lines = []
    for name in sorted(n for n in environ if n.upper().startswith("CHURN_")):
        if name.upper() in known or name in NOT_SETTINGS:
            continue
        guess = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0.75)
        lines.append(f"{name} is not a setting and is ignored" + (f": did you mean {guess[0]}?" if guess else
                                                                    " (docs/configuration.md lists every setting)"))
    return lines


def warn_unknown_variables(environ) -> None:
    """Each unknown variable's line once per process, as a warning (``churn.settings``)."""
    import logging

    for line in unknown_variables(environ):
        if line not in _warned:
            _warned.add(line)
            logging.getLogger("churn.settings").warning(line)


OBJECTIVE_FORMS = "f1, f2, fbeta:<beta>, cost:<r>, top:<N per day> or top:<fraction>"


def parse_objective(objective: str) -> tuple[str, float]:
    """The decision rule of setting ``threshold_objective``: ("fbeta", beta) | ("cost", r) | ("top", N per day)
    | ("share", fraction); a ValueError that shows the accepted forms otherwise."""
    kind, _, arg = str(objective).strip().partition(":")
    try:
        if kind in ("f1", "f2") and not arg:
            return "fbeta", 1.0 if kind == "f1" else 2.0
        value = float(arg)
    except ValueError:
        raise ValueError(f"threshold objective {objective!r}: use {OBJECTIVE_FORMS}") from None
    if kind == "fbeta" and value > 0:
        return "fbeta", value
    if kind == "cost" and value > 0:
        return "cost", value
    if kind == "top" and value >= 1 and value.is_integer():
        return "top", value
    if kind == "top" and 0 < value < 1:
        return "share", value
    raise ValueError(f"threshold objective {objective!r}: use {OBJECTIVE_FORMS} (positive numbers; a top count is "
                     "a whole number, a top fraction is below 1)")


def alert_notifier_specs(value: str) -> list[dict]:
    """The notifiers of setting ``alert_notifiers``: [{"class": "pkg.module.Class", "kwargs": {...}}, ...]."""
    import json

    if not value.strip():
        return []
    try:
        specs = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"CHURN_ALERT_NOTIFIERS is not JSON ({exc.msg}): give a list of "
                         '{"class": "module.Notifier", "kwargs": {...}}') from None
    if not isinstance(specs, list) or not all(isinstance(x, dict) and isinstance(x.get("class"), str)
                                              and "." in x["class"] and isinstance(x.get("kwargs", {}), dict)
                                              for x in specs):
        raise ValueError('CHURN_ALERT_NOTIFIERS must be a list of {"class": "module.Notifier", "kwargs": {...}}')
    return specs


def join(root: str, *parts: str) -> str:
    """Join path parts onto a folder or a URI with forward slashes."""
    if "://" in root:
        return "/".join([root.rstrip("/"), *[p.strip("/") for p in parts]])
    return os.path.join(root, *parts)


def _bounds(field) -> str:
    """A field's numeric limits as a person reads them, e.g. ``0.5 <= x < 1``."""
    low = high = ""
    for rule in field.metadata:
        for attr, sign in (("ge", "<="), ("gt", "<")):
            if getattr(rule, attr, None) is not None:
                low = f"{getattr(rule, attr)} {sign} "
        for attr, sign in (("le", "<="), ("lt", "<")):
            if getattr(rule, attr, None) is not None:
                high = f" {sign} {getattr(rule, attr)}"
    return f"{low}x{high}" if low or high else ""


def settings_table_markdown() -> str:
    """The docs' table of every setting, generated from the fields so it cannot drift."""
    lines = ["| environment variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = "" if default in (None, "") else f"`{default}`"
        bounds = _bounds(field)
        lines.append(f"| `CHURN_{name.upper()}` | {shown} | {field.description or ''}"
                     + (f" (allowed: {bounds})" if bounds else "") + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(settings_table_markdown(), end="")  # python -m churn.core.settings
