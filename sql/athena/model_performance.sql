-- Athena DDL of `model_performance`: realised performance of the predictions whose outcomes became known on dt, per model version.
-- Generated from churn/core/tables.py; do not edit: regenerate with `churn catalog ddl --write`.
-- An Apache Iceberg table: `churn catalog apply` creates it through the Iceberg catalog (the same
-- schema, partitioned by the identity of dt); this statement is the Athena equivalent (--via athena).
-- ${database} and ${location} (table root, no trailing slash) are filled by churn.core.tables.fill.
CREATE TABLE IF NOT EXISTS `${database}`.`model_performance` (
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
  `alert`                  string,
  `roc_auc_low`            double,
  `roc_auc_high`           double,
  `observed_rate`          double,
  `log_loss_se`            double,
  `brier_se`               double,
  `dt`                     date
)
PARTITIONED BY (`dt`)
LOCATION '${location}/'
TBLPROPERTIES (
  'table_type'='ICEBERG',
  'format'='parquet',
  'write_compression'='snappy'
)
