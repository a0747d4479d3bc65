-- Athena DDL of `feature_drift`: PSI of each feature of instances_w1 dt (and of the score) against the scoring model's training profile.
-- Generated from churn/core/tables.py; do not edit: regenerate with `churn catalog ddl --write`.
-- An Apache Iceberg table: `churn catalog apply` creates it through the Iceberg catalog (the same
-- schema, partitioned by the identity of dt); this statement is the Athena equivalent (--via athena).
-- ${database} and ${location} (table root, no trailing slash) are filled by churn.core.tables.fill.
CREATE TABLE IF NOT EXISTS `${database}`.`feature_drift` (
  `feature`             string,
  `model_version`       string,
  `current_rows`        bigint,
  `reference_rows`      bigint,
  `psi`                 double,
  `mean`                double,
  `reference_mean`      double,
  `null_rate`           double,
  `reference_null_rate` double,
  `alert`               string,
  `psi_p_value`         double,
  `dt`                  date
)
PARTITIONED BY (`dt`)
LOCATION '${location}/'
TBLPROPERTIES (
  'table_type'='ICEBERG',
  'format'='parquet',
  'write_compression'='snappy'
)
