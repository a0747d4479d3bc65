-- Athena DDL of `instances_w1_scored`: daily churn scores written by models/score.py (hand-written).
-- Columns match models.score.OUTPUT_SCHEMA (tests/models/test_athena_ddl.py checks it).
-- ${database} and ${location} (table root, no trailing slash) are filled by churn.catalog;
-- ${dt} is Athena's partition-projection placeholder and stays literal.
-- p_retained: calibrated probability of converting; prediction_retained: 1 if p_retained >= the
-- model's threshold; risk_band: 1 = highest churn risk ... 10 (deciles of the training distribution);
-- reason_k_*: the k-th most negative contribution to retained (log-odds), null if fewer are negative.
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
