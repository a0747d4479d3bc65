-- Athena DDL of `feature_drift`: drift of the scoring population instances_w1 dt against the champion's training window (hand-written).
-- Columns match models.monitor.DRIFT_SCHEMA (tests/models/test_monitor.py checks it).
-- ${database} and ${location} (table root, no trailing slash) are filled by churn.catalog;
-- ${dt} is Athena's partition-projection placeholder and stays literal.
-- One row per model feature (PSI over training deciles, nulls a bin of their own) plus the row
-- feature = 'p_retained' (PSI of today's risk bands against 10% each); alert when PSI is above the setting.
CREATE EXTERNAL TABLE IF NOT EXISTS `${database}`.`feature_drift` (
  `feature`              string,
  `model_version`        string,
  `current_rows`         bigint,
  `reference_rows`       bigint,
  `psi`                  double,
  `mean`                 double,
  `reference_mean`       double,
  `null_rate`            double,
  `reference_null_rate`  double,
  `alert`                string
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
