"""One typed settings object for the whole system.

Every field can be set as an environment variable with the ``CHURN_`` prefix (``CHURN_WAREHOUSE``,
``CHURN_LABEL_WINDOW_DAYS`` …) or in a ``.env`` file. The deployment (``local`` or ``aws``) only
changes where data lives and which engine runs, never what is computed.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SQL_DIR = PROJECT_ROOT / "sql"
DEFAULT_FEATURE_CONFIG = SQL_DIR / "features" / "feature_config.yaml"


class Settings(BaseSettings):
    """Where data lives, how features are windowed, and how models are chosen."""

    model_config = SettingsConfigDict(env_prefix="CHURN_", env_file=".env", extra="ignore")

    deployment: Literal["local", "aws"] = Field("local", description="local folder + local Spark, or S3 + EMR")
    warehouse: str = Field("warehouse", description="root of every table: a folder or s3://bucket/prefix")
    raw_evaluations: str | None = Field(None, description="evaluations table location (default {warehouse}/raw/evaluations)")
    raw_events: str | None = Field(None, description="events table location (default {warehouse}/raw/events)")
    feature_config: str = Field(str(DEFAULT_FEATURE_CONFIG), description="YAML: which event types feed which count feature")
    first_week_days: int = Field(7, ge=1, description="length of the observed first week")
    label_window_days: int = Field(30, ge=1, description="days after eval start within which a conversion counts as retained")
    training_window_days: int = Field(90, ge=7, description="days of instances_modeling partitions per retrain")
    validation_days: int = Field(14, ge=1, description="most recent cohorts (by eval_start_date) held out for validation")
    threshold_objective: str = Field("f2", description="f1, f2, or cost:<fn/fp ratio> e.g. cost:5")
    promotion_auc_tolerance: float = Field(0.005, ge=0, description="a challenger may be this much AUC below the champion")
    promotion_auc_floor: float = Field(0.60, description="absolute AUC a model must clear to become champion")
    model_name: str = Field("churn_w1", description="registry name of the model")
    seed: int = Field(27, description="random seed for simulation and training")
    s3_endpoint_url: str | None = Field(None, description="S3 API endpoint (MinIO / moto); empty for AWS")
    aws_region: str = Field("us-east-1", description="AWS region for S3, Glue and Athena")
    spark_master: str = Field("local[2]", description="Spark master URL for in-process runs")
    spark_shuffle_partitions: int = Field(4, ge=1, description="spark.sql.shuffle.partitions")
    athena_database: str = Field("churn", description="Glue/Athena database of the output tables")
    athena_workgroup: str = Field("primary", description="Athena workgroup")
    athena_output: str | None = Field(None, description="s3:// location for Athena query results")
    aws_endpoint_url: str | None = Field(None, description="Glue/Athena API endpoint (moto in tests); empty for AWS")
    spark_runner: Literal["local", "emr_serverless"] = Field(
        "local", description="where DAG feature tasks run Spark: in the worker (local) or on EMR Serverless"
    )
    emr_application_id: str | None = Field(None, description="EMR Serverless application id (spark_runner=emr_serverless)")
    emr_execution_role_arn: str | None = Field(None, description="IAM role EMR Serverless jobs run as")
    monitoring_psi_alert: float = Field(0.25, gt=0, description="a feature or score PSI above this raises a drift alert")
    monitoring_auc_drop_alert: float = Field(
        0.05, ge=0, description="realised AUC this far below the model's validation AUC raises an alert"
    )
    alert_callback: str | None = Field(
        None, description="module:function called with the Airflow context when a task fails (default: log only)"
    )

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
    def evaluations_path(self) -> str:
        return self.raw_evaluations or join(self.warehouse, "raw", "evaluations")

    @property
    def events_path(self) -> str:
        return self.raw_events or join(self.warehouse, "raw", "events")

    def feature_table_path(self, table: str) -> str:
        return join(self.warehouse, "features", table)

    def predictions_table_path(self, table: str = "instances_w1_scored") -> str:
        return join(self.warehouse, "predictions", table)

    def monitoring_table_path(self, table: str) -> str:
        return join(self.warehouse, "monitoring", table)

    @property
    def models_path(self) -> str:
        return join(self.warehouse, "models", self.model_name)

    @property
    def truth_path(self) -> str:
        """Simulator ground truth (true conversion probabilities); never a feature."""
        return join(self.warehouse, "simulation", "truth")


def join(root: str, *parts: str) -> str:
    """Join path parts onto a folder or a URI with forward slashes."""
    if "://" in root:
        return "/".join([root.rstrip("/"), *[p.strip("/") for p in parts]])
    return os.path.join(root, *parts)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    """Tests and CLIs that change CHURN_* variables call this to re-read them."""
    get_settings.cache_clear()


def settings_table_markdown() -> str:
    """The docs' table of every setting, generated from the fields so it cannot drift."""
    lines = ["| environment variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if name == "feature_config":
            default = "sql/features/feature_config.yaml"
        shown = "" if default is None else f"`{default}`"
        lines.append(f"| `CHURN_{name.upper()}` | {shown} | {field.description or ''} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(settings_table_markdown(), end="")
