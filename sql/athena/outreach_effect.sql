-- Athena DDL of `outreach_effect`: what outreach did, per channel and segment, for the assignments whose outcomes became known on dt: contacted vs holdout conversion, uplift with a 95% interval, cost per saved conversion.
-- Generated from churn/core/tables.py; do not edit: regenerate with `churn catalog ddl --write`.
-- An Apache Iceberg table: `churn catalog apply` creates it through the Iceberg catalog (the same
-- schema, partitioned by the identity of dt); this statement is the Athena equivalent (--via athena).
-- ${database} and ${location} (table root, no trailing slash) are filled by churn.core.tables.fill.
CREATE TABLE IF NOT EXISTS `${database}`.`outreach_effect` (
  `channel`                   string,
  `segment`                   string,
  `contacted`                 bigint,
  `converted`                 bigint,
  `holdout`                   bigint,
  `holdout_converted`         bigint,
  `uplift`                    double,
  `uplift_low`                double,
  `uplift_high`               double,
  `cost`                      double,
  `cost_per_saved_conversion` double,
  `assigned_dt`               date,
  `dt`                        date
)
PARTITIONED BY (`dt`)
LOCATION '${location}/'
TBLPROPERTIES (
  'table_type'='ICEBERG',
  'format'='parquet',
  'write_compression'='snappy'
)
