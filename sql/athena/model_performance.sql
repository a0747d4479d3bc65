-- Athena DDL of `model_performance`: realised performance of the predictions whose outcomes became known on dt, per model version.
-- Generated from churn/core/tables.py; do not edit: regenerate with `churn catalog ddl --write`.
-- ${database} and ${location} (table root, no trailing slash) are filled by churn.core.tables.fill;
-- ${dt} is Athena's partition-projection placeholder and stays literal.
CREATE EXTERNAL TABLE IF NOT EXISTS `${database}`.`model_performance` (
  `model_version`          string,
  `cohort_eval_start_date` date,
  `scored_dt`              date,
  `labelled_rows`          bigint,
  `scored_rows`            bigint,
  `label_rate`             double,
  `mean_p_retained`        double,
  `roc_auc`                double,
  `log_loss`               double,
  `brier`                  double,
  `precision`              double,
  `recall`                 double,
  `f2`                     double,
  `validation_roc_auc`     double,
  `alert`                  string
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
