-- Athena DDL of `instances_modeling`: first-week features and the outcome `retained` of the trials whose label window ended on dt (to train).
-- Generated from the feature configuration (sql/features/feature_config.yaml); do not edit: regenerate with `churn catalog ddl --write`.
-- An Apache Iceberg table: `churn catalog apply` creates it through the Iceberg catalog (the same
-- schema, partitioned by the identity of dt); this statement is the Athena equivalent (--via athena).
-- ${database} and ${location} (table root, no trailing slash) are filled by churn.core.tables.fill.
CREATE TABLE IF NOT EXISTS `${database}`.`instances_modeling` (
  `instance_id`               string,
  `eval_start_date`           date,
  `retained`                  int,
  `number_of_projects`        bigint,
  `number_of_issues`          bigint,
  `number_of_invites`         bigint,
  `watchers_added`            bigint,
  `issues_updated`            bigint,
  `issues_commented`          bigint,
  `issues_assigned`           bigint,
  `at_mentions`               bigint,
  `issues_viewed`             bigint,
  `issues_completed`          bigint,
  `sprint_started`            bigint,
  `sprint_finished`           bigint,
  `w1_active_users`           bigint,
  `w1_agg_active_users`       bigint,
  `w1_max_active_users`       bigint,
  `mobile_usage`              bigint,
  `w1_events`                 bigint,
  `w1_active_days`            bigint,
  `w1_activity_trend`         double,
  `hours_to_first_key_action` double,
  `eval_start_weekday`        int,
  `company_size_rank`         double,
  `dt`                        date
)
PARTITIONED BY (`dt`)
LOCATION '${location}/'
TBLPROPERTIES (
  'table_type'='ICEBERG',
  'format'='parquet',
  'write_compression'='snappy'
)
