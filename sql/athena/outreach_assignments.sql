-- Athena DDL of `outreach_assignments`: the outreach policy's choice for every trial scored on dt: channel or none, holdout, propensity, expected gain, policy version (for the CRM or marketing tool to pick up).
-- Generated from churn/core/tables.py; do not edit: regenerate with `churn catalog ddl --write`.
-- An Apache Iceberg table: `churn catalog apply` creates it through the Iceberg catalog (the same
-- schema, partitioned by the identity of dt); this statement is the Athena equivalent (--via athena).
-- ${database} and ${location} (table root, no trailing slash) are filled by churn.core.tables.fill.
CREATE TABLE IF NOT EXISTS `${database}`.`outreach_assignments` (
  `instance_id`       string,
  `channel`           string,
  `intended`          string,
  `holdout`           boolean,
  `overflow`          boolean,
  `propensity`        double,
  `expected_gain`     double,
  `log_odds`          double,
  `company_size_rank` double,
  `mobile_share`      double,
  `policy_version`    string,
  `run_date`          date,
  `dt`                date
)
PARTITIONED BY (`dt`)
LOCATION '${location}/'
TBLPROPERTIES (
  'table_type'='ICEBERG',
  'format'='parquet',
  'write_compression'='snappy'
)
