-- Scoring cohort: instances whose first week ended on the partition date dt.
-- dt = eval_start_date + :first_week_days; no outcome column, by construction.
-- Written to mean the same on Spark and DuckDB (translated by sqlglot): date_add is cast back to DATE.
SELECT
  instance_id,
  eval_start_date,
  CAST(CAST(date_add(eval_start_date, :first_week_days) AS DATE) AS STRING) AS dt
FROM evaluations
WHERE eval_start_date BETWEEN :cohort_start AND :cohort_end
