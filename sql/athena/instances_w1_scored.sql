-- Athena DDL of `instances_w1_scored`: champion scores of instances_w1 dt: p_retained, the decision at the model's threshold, risk band (1 = highest churn risk), the three most negative log-odds contributions, model version, the snapshot of the features scored.
-- Generated from churn/core/tables.py; do not edit: regenerate with `churn catalog ddl --write`.
-- An Apache Iceberg table: `churn catalog apply` creates it through the Iceberg catalog (the same
-- schema, partitioned by the identity of dt); this statement is the Athena equivalent (--via athena).
-- ${database} and ${location} (table root, no trailing slash) are filled by churn.core.tables.fill.
CREATE TABLE IF NOT EXISTS `${database}`.`instances_w1_scored` (
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
  `run_date`              date,
  `features_snapshot_id`  bigint,
  `reason_1_text`         string,
  `reason_2_text`         string,
  `reason_3_text`         string,
  `at_risk`               int,
  `risk_rank`             int,
  `dt`                    date
)
PARTITIONED BY (`dt`)
LOCATION '${location}/'
TBLPROPERTIES (
  'table_type'='ICEBERG',
  'format'='parquet',
  'write_compression'='snappy'
)
