-- Athena DDL of `evaluations`: one row per trial (raw input, written by the product).
-- Generated from the raw contract (churn/core/contract.py); do not edit: regenerate with `churn catalog ddl --write`.
-- ${database} and ${location} (table root, no trailing slash) are filled by churn.core.tables.fill;
-- ${dt} is Athena's partition-projection placeholder and stays literal.
CREATE EXTERNAL TABLE IF NOT EXISTS `${database}`.`evaluations` (
  `instance_id`     string,
  `eval_start_date` date,
  `converted_date`  date
)
STORED AS PARQUET
LOCATION '${location}/'
TBLPROPERTIES (
  'parquet.compression'='SNAPPY'
)
