"""Every table of the warehouse, declared once: name, location, partitioning, columns, catalog.

The Athena DDL files (``sql/athena/<table>.sql``), the Glue registration, ``churn query``'s views,
the DAGs' assets and the writers' Arrow schemas all come from :data:`TABLES`. Column types are
Athena's (``string``, ``date``, ``int``, ``bigint``, ``double``, ``timestamp``); the feature tables'
columns come from the feature configuration, the raw tables' from the raw contract.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from churn.core.feature_config import load_feature_config
from churn.core.settings import SQL_DIR, Settings, join

# No pyarrow at import time: DAG files import this module and must parse without heavy libraries.
PARTITION_KEY = "dt"
ATHENA_DIR = SQL_DIR / "athena"
N_REASONS = 3

# ---- columns of what the system writes besides features (name, Athena type) -------------------------

PREDICTIONS_COLUMNS = [
    ("instance_id", "string"),
    ("eval_start_date", "date"),
    ("p_retained", "double"),
    ("prediction_retained", "int"),
    ("risk_band", "int"),
    *[c for k in range(1, N_REASONS + 1) for c in ((f"reason_{k}_feature", "string"), (f"reason_{k}_contribution", "double"))],
    ("model_version", "string"),
    ("run_date", "date"),
    ("features_snapshot_id", "bigint"),  # the instances_w1 snapshot that wrote the scored features
    # each reason as a person reads it: "no issues completed in week 1 (converting trials: median 2)"
    *[(f"reason_{k}_text", "string") for k in range(1, N_REASONS + 1)],
    # the decision the people who act on it use: flagged (setting threshold_objective), and rank within the day
    ("at_risk", "int"),
    ("risk_rank", "int"),
]
PERFORMANCE_COLUMNS = [
    ("model_version", "string"),
    ("cohort_eval_start_date", "date"),
    ("scored_dt", "date"),
    ("labelled_rows", "bigint"),
    ("scored_rows", "bigint"),
    ("label_rate", "double"),
    ("mean_p_retained", "double"),
    ("roc_auc", "double"),
    ("log_loss", "double"),
    ("brier", "double"),
    ("precision", "double"),
    ("recall", "double"),
    ("f2", "double"),
    ("validation_roc_auc", "double"),
    ("alert", "string"),
    ("roc_auc_low", "double"),  # 95% interval of roc_auc (Hanley & McNeil): how much a day's AUC can say
    ("roc_auc_high", "double"),
    ("observed_rate", "double"),  # retained rate of the scored rows (compare with mean_p_retained)
    ("log_loss_se", "double"),  # standard errors of the daily means: the dashboard's intervals
    ("brier_se", "double"),
]
ASSIGNMENTS_COLUMNS = [  # one row per scored trial of dt: what the CRM / marketing tool acts on
    ("instance_id", "string"),
    ("channel", "string"),  # the channel to contact it through, or none
    ("intended", "string"),  # the policy's choice before the holdout (the holdout's comparison groups)
    ("holdout", "boolean"),  # randomised to no contact, to measure the channel it was chosen for
    ("overflow", "boolean"),  # chosen, not held out, but over the channel's capacity: not contacted
    ("propensity", "double"),  # P(this channel | the trial) under the policy: for off-policy evaluation
    ("expected_gain", "double"),  # conversion value x uplift - cost, under the posterior mean
    ("log_odds", "double"),  # the champion's log-odds of conversion (the policy's offset)
    ("company_size_rank", "double"),  # the segments the policy saw (features of instances_w1 dt)
    ("mobile_share", "double"),
    ("policy_version", "string"),
    ("run_date", "date"),
]
OUTREACH_EFFECT_COLUMNS = [  # per channel and segment, for the assignments whose outcomes became known on dt
    ("channel", "string"),
    ("segment", "string"),
    ("contacted", "bigint"),
    ("converted", "bigint"),
    ("holdout", "bigint"),
    ("holdout_converted", "bigint"),
    ("uplift", "double"),
    ("uplift_low", "double"),
    ("uplift_high", "double"),
    ("cost", "double"),
    ("cost_per_saved_conversion", "double"),
    ("assigned_dt", "date"),
]
DRIFT_COLUMNS = [
    ("feature", "string"),
    ("model_version", "string"),
    ("current_rows", "bigint"),
    ("reference_rows", "bigint"),
    ("psi", "double"),
    ("mean", "double"),
    ("reference_mean", "double"),
    ("null_rate", "double"),
    ("reference_null_rate", "double"),
    ("alert", "string"),
    ("psi_p_value", "double"),  # chi-square homogeneity vs the training rows: is a PSI that large chance?
]


def arrow_schema(columns: list[tuple[str, str]]):
    """The Arrow schema of (name, Athena type) columns."""
    import pyarrow as pa

    types = {"string": pa.string(), "date": pa.date32(), "int": pa.int32(), "bigint": pa.int64(),
             "double": pa.float64(), "boolean": pa.bool_(), "timestamp": pa.timestamp("us", tz="UTC")}
    return pa.schema([pa.field(name, types[kind]) for name, kind in columns])


ATHENA_TYPES = ("string", "date", "timestamp", "boolean", "int", "bigint", "double")


def arrow_to_athena(dtype) -> str:
    """The Athena type of an Arrow type (the contract's type names; every timestamp is ``timestamp``)."""
    from churn.core.contract import type_name

    kind = type_name(dtype)
    kind = "timestamp" if kind.startswith("timestamp") else kind
    if kind not in ATHENA_TYPES:
        raise ValueError(f"no Athena type for Arrow type {dtype}")
    return kind


def _fixed(columns: list[tuple[str, str]]) -> Callable[[Settings], list[tuple[str, str]]]:
    return lambda settings: list(columns)  # noqa: ARG005


def _raw(table: str) -> Callable[[Settings], list[tuple[str, str]]]:
    def columns(settings: Settings) -> list[tuple[str, str]]:  # noqa: ARG001
        from churn.core import contract

        schema = contract.EVALUATIONS_SCHEMA if table == "evaluations" else [*contract.EVENTS_SCHEMA,
                                                                              *contract.EVENTS_OPTIONAL]
        return [(f.name, arrow_to_athena(f.type)) for f in schema]

    return columns


def _feature_columns(table: str) -> Callable[[Settings], list[tuple[str, str]]]:
    return lambda settings: load_feature_config(settings).table_columns(table)


def __getattr__(name: str):
    """``PREDICTIONS_SCHEMA`` / ``PERFORMANCE_SCHEMA`` / ``DRIFT_SCHEMA``: Arrow schemas, built on first use."""
    columns = {"PREDICTIONS_SCHEMA": PREDICTIONS_COLUMNS, "PERFORMANCE_SCHEMA": PERFORMANCE_COLUMNS,
               "DRIFT_SCHEMA": DRIFT_COLUMNS}
    if name in columns:
        return arrow_schema(columns[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Table:
    """One table: where it lives under the warehouse, how it is partitioned, its columns, its catalog entry."""

    name: str
    zone: str  # raw | features | predictions | monitoring: the folder under the warehouse root
    description: str
    columns_from: str  # what the columns are generated from (shown in the DDL header)
    _columns: Callable[[Settings], list[tuple[str, str]]]
    partitioned: bool = True
    published: bool = True  # written by this system: an Iceberg table (raw tables: no, Hive-style Parquet)
    glue: bool = True  # registered in the Glue Data Catalog (Athena)
    folder: str | None = None  # the folder under the zone, when not the table's name
    # a feature table: its cohort (sql/features/<cohort_sql>: which trials land in dt) and whether it holds the label
    cohort_sql: str | None = None
    labelled: bool = False

    def location(self, settings: Settings) -> str:
        """The table root (no trailing slash): a folder or an s3:// prefix."""
        if self.name == "evaluations" and settings.raw_evaluations:
            return settings.raw_evaluations.rstrip("/")
        if self.name == "events" and settings.raw_events:
            return settings.raw_events.rstrip("/")
        return join(settings.warehouse, self.zone, self.folder or self.name)

    def cohort_offset_days(self, settings: Settings) -> int:
        """A feature table's dt minus its trials' eval_start_date: the label window, or the first week."""
        if self.cohort_sql is None:
            raise ValueError(f"{self.name} is not a feature table: it has no cohort")
        return settings.label_window_days if self.labelled else settings.first_week_days

    def columns(self, settings: Settings) -> list[tuple[str, str]]:
        """(name, Athena type) of every non-partition column, in file order."""
        return self._columns(settings)

    def arrow_schema(self, settings: Settings):
        return arrow_schema(self.columns(settings))

    @property
    def asset_uri(self) -> str:
        """The Airflow asset of the table: a name, not a location, so one DAG file serves every deployment."""
        return f"churn://{self.zone}/{self.name}"

    @property
    def ddl_path(self) -> Path:
        return ATHENA_DIR / f"{self.name}.sql"


_FEATURE_SOURCE = "the feature configuration (sql/features/feature_config.yaml)"
_CONTRACT_SOURCE = "the raw contract (churn/core/contract.py)"
_TABLES_SOURCE = "churn/core/tables.py"

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table("evaluations", "raw", "one row per trial (raw input, written by the product)", _CONTRACT_SOURCE,
              _raw("evaluations"), partitioned=False, published=False),
        Table("events", "raw", "product-usage events by UTC day of event_time (raw input)", _CONTRACT_SOURCE,
              _raw("events"), published=False),
        Table("instances_w1", "features", "first-week features of the trials whose first week ended on dt (to score)",
              _FEATURE_SOURCE, _feature_columns("instances_w1"), cohort_sql="features/cohort_instances_w1.sql"),
        Table("instances_modeling", "features",
              "first-week features and the outcome `retained` of the trials whose label window ended on dt (to train)",
              _FEATURE_SOURCE, _feature_columns("instances_modeling"),
              cohort_sql="features/cohort_instances_modeling.sql", labelled=True),
        Table("instances_w1_scored", "predictions",
              "champion scores of instances_w1 dt: p_retained, the decision at the model's threshold, risk band "
              "(1 = highest churn risk), the three most negative log-odds contributions, model version, the "
              "snapshot of the features scored",
              _TABLES_SOURCE, _fixed(PREDICTIONS_COLUMNS)),
        Table("model_performance", "monitoring",
              "realised performance of the predictions whose outcomes became known on dt, per model version",
              _TABLES_SOURCE, _fixed(PERFORMANCE_COLUMNS)),
        Table("feature_drift", "monitoring",
              "PSI of each feature of instances_w1 dt (and of the score) against the scoring model's training profile",
              _TABLES_SOURCE, _fixed(DRIFT_COLUMNS)),
        Table("outreach_assignments", "outreach",
              "the outreach policy's choice for every trial scored on dt: channel or none, holdout, propensity, "
              "expected gain, policy version (for the CRM or marketing tool to pick up)",
              _TABLES_SOURCE, _fixed(ASSIGNMENTS_COLUMNS), folder="assignments"),
        Table("outreach_effect", "monitoring",
              "what outreach did, per channel and segment, for the assignments whose outcomes became known on dt: "
              "contacted vs holdout conversion, uplift with a 95% interval, cost per saved conversion",
              _TABLES_SOURCE, _fixed(OUTREACH_EFFECT_COLUMNS)),
    )
}
EVALUATIONS, EVENTS = TABLES["evaluations"], TABLES["events"]
INSTANCES_W1, INSTANCES_MODELING = TABLES["instances_w1"], TABLES["instances_modeling"]
PREDICTIONS = TABLES["instances_w1_scored"]
MODEL_PERFORMANCE, FEATURE_DRIFT = TABLES["model_performance"], TABLES["feature_drift"]
OUTREACH_ASSIGNMENTS, OUTREACH_EFFECT = TABLES["outreach_assignments"], TABLES["outreach_effect"]
FEATURE_TABLES = (INSTANCES_W1.name, INSTANCES_MODELING.name)
MODEL_REGISTRY_URI = "churn://models/registry"  # the registry is not a table, but DAGs announce it as an asset


def table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"unknown table {name!r}; tables: {', '.join(TABLES)}") from None


# ---- Athena DDL --------------------------------------------------------------------------------------

PROJECTION_PROPERTIES = {
    "projection.enabled": "true",
    "projection.dt.type": "date",
    "projection.dt.format": "yyyy-MM-dd",
    "projection.dt.range": "NOW-3YEARS,NOW",
    "projection.dt.interval": "1",
    "projection.dt.interval.unit": "DAYS",
}
_PLACEHOLDER = re.compile(r"\$\{(database|location)\}")  # ${dt} and any other ${...} stay literal


def table_properties(t: Table) -> dict[str, str]:
    properties = dict(PROJECTION_PROPERTIES) if t.partitioned else {}
    if t.partitioned:
        properties["storage.location.template"] = "${location}/dt=${dt}/"
    properties["parquet.compression"] = "SNAPPY"
    return properties


def render_ddl(t: Table, settings: Settings) -> str:
    """The DDL template of a table, exactly as checked in under sql/athena/ (``churn catalog ddl --write``).

    Raw tables (written by producers, Hive-style ``dt=`` folders) are external Parquet tables with partition
    projection; the tables this system writes are Iceberg tables (``dt`` a date column, identity partition).
    """
    if t.published:
        return _render_iceberg_ddl(t, settings)
    lines = _ddl_head(t, t.columns(settings), "CREATE EXTERNAL TABLE", [
        "-- ${database} and ${location} (table root, no trailing slash) are filled by churn.core.tables.fill;",
        "-- ${dt} is Athena's partition-projection placeholder and stays literal.",
    ])
    if t.partitioned:
        lines.append(f"PARTITIONED BY (`{PARTITION_KEY}` string)")
    lines += [
        "STORED AS PARQUET",
        "LOCATION '${location}/'",
        "TBLPROPERTIES (",
        ",\n".join(f"  '{key}'='{value}'" for key, value in table_properties(t).items()),
        ")",
    ]
    return "\n".join(lines) + "\n"


def _ddl_head(t: Table, columns: list[tuple[str, str]], create: str, notes: list[str]) -> list[str]:
    """The comment header and the aligned column list, shared by the Hive and the Iceberg DDL."""
    width = max(len(name) for name, _ in columns) + 2
    return [
        f"-- Athena DDL of `{t.name}`: {t.description}.",
        f"-- Generated from {t.columns_from}; do not edit: regenerate with `churn catalog ddl --write`.",
        *notes,
        f"{create} IF NOT EXISTS `${{database}}`.`{t.name}` (",
        ",\n".join(f"  {('`' + name + '`').ljust(width)} {kind}" for name, kind in columns),
        ")",
    ]


def _render_iceberg_ddl(t: Table, settings: Settings) -> str:
    lines = _ddl_head(t, [*t.columns(settings), (PARTITION_KEY, "date")], "CREATE TABLE", [
        "-- An Apache Iceberg table: `churn catalog apply` creates it through the Iceberg catalog (the same",
        "-- schema, partitioned by the identity of dt); this statement is the Athena equivalent (--via athena).",
        "-- ${database} and ${location} (table root, no trailing slash) are filled by churn.core.tables.fill.",
    ])
    lines += [
        f"PARTITIONED BY (`{PARTITION_KEY}`)",
        "LOCATION '${location}/'",
        "TBLPROPERTIES (",
        ",\n".join(f"  '{key}'='{value}'" for key, value in ICEBERG_PROPERTIES.items()),
        ")",
    ]
    return "\n".join(lines) + "\n"


ICEBERG_PROPERTIES = {"table_type": "ICEBERG", "format": "parquet", "write_compression": "snappy"}


def fill(template: str, database: str, location: str) -> str:
    """Substitute ``${database}`` and ``${location}``; every other ``${...}`` (``${dt}``) stays."""
    values = {"database": database, "location": location.rstrip("/")}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def ddl_statement(t: Table, settings: Settings) -> str:
    """The executable statement for the current settings: the rendered DDL, filled, without comments."""
    text = fill(render_ddl(t, settings), settings.athena_database, t.location(settings))
    body = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(body).strip().rstrip(";").strip()


def table_location(name: str, settings: Settings) -> str:
    """Root of table ``name`` for these settings (shorthand for ``table(name).location(settings)``)."""
    return table(name).location(settings)
