-- Athena DDL of `feature_drift`: PSI of each feature of instances_w1 dt (and of the score) against the scoring model's training profile.
-- Generated from churn/core/tables.py; do not edit: regenerate with `churn catalog ddl --write`.
-- ${database} and ${location} (table root, no trailing slash) are filled by churn.core.tables.fill;
-- ${dt} is Athena's partition-projection placeholder and stays literal.
CREATE EXTERNAL TABLE IF NOT EXISTS `${database}`.`feature_drift` (
  `feature`             string,
  `model_version`       string,
  `current_rows`        bigint,
  `reference_rows`      bigint,
  `psi`                 double,
  `mean`                double,
  `reference_mean`      double,
  `null_rate`           double,
  `reference_null_rate` double,
  `alert`               string
)
PARTITIONED BY (`dt` string)
STORED AS PARQUET
LOCATION '${location}/'
TBLPROPERTIES (
  'projection.enabled'='true',
  'projection.dt.type'='date',
  'projection.dt.format'='yyyy-MM-dd',
  'projection.dt.range'='NOW-3YEARS,NOW',
  'projection.dt.interval'='1',
  'projection.dt.interval.unit'='DAYS',
  'storage.location.template'='${location}/dt=${dt}/',
  'parquet.compression'='SNAPPY'
)
