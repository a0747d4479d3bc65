-- Athena DDL of `instances_w1_scored`: champion scores of instances_w1 dt: p_retained, the decision at the model's threshold, risk band (1 = highest churn risk), the three most negative log-odds contributions, model version.
-- Generated from churn/core/tables.py; do not edit: regenerate with `churn catalog ddl --write`.
-- ${database} and ${location} (table root, no trailing slash) are filled by churn.core.tables.fill;
-- ${dt} is Athena's partition-projection placeholder and stays literal.
CREATE EXTERNAL TABLE IF NOT EXISTS `${database}`.`instances_w1_scored` (
  `instance_id`           string,
  `eval_start_date`       date,
  `p_retained`            double,
  `prediction_retained`   int,
  `risk_band`             int,
  `reason_1_feature`      string,
  `reason_1_contribution` double,
  `reason_2_feature`      string,
  `reason_2_contribution` double,
  `reason_3_feature`      string,
  `reason_3_contribution` double,
  `model_version`         string,
  `run_date`              date
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
