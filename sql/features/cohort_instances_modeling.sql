-- Training cohort: instances whose outcome became known on the partition date dt.
-- dt = eval_start_date + :label_window_days; retained = converted before dt.
-- Written to mean the same on Spark and DuckDB (translated by sqlglot): date_add is cast back to DATE.
SELECT
  instance_id,
  eval_start_date,
  CAST(
    CASE
      WHEN converted_date IS NOT NULL
        AND converted_date >= eval_start_date
        AND converted_date < CAST(date_add(eval_start_date, :label_window_days) AS DATE)
      THEN 1 ELSE 0
    END AS INT
  ) AS retained,
  CAST(CAST(date_add(eval_start_date, :label_window_days) AS DATE) AS STRING) AS dt
FROM evaluations
WHERE eval_start_date BETWEEN :cohort_start AND :cohort_end
