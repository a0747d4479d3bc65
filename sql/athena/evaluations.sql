-- Athena DDL of `evaluations`: generated from the raw contract (churn/contract.py).
-- Do not edit: regenerate with `churn catalog ddl --write`.
-- ${database} and ${location} (table root, no trailing slash) are filled by churn.catalog;
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
