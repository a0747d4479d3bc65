-- Athena DDL of `events`: product-usage events by UTC day of event_time (raw input).
-- Generated from the raw contract (churn/core/contract.py); do not edit: regenerate with `churn catalog ddl --write`.
-- ${database} and ${location} (table root, no trailing slash) are filled by churn.core.tables.fill;
-- ${dt} is Athena's partition-projection placeholder and stays literal.
CREATE EXTERNAL TABLE IF NOT EXISTS `${database}`.`events` (
  `instance_id` string,
  `user_id`     string,
  `event_time`  timestamp,
  `event_type`  string,
  `platform`    string,
  `received_at` timestamp
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
