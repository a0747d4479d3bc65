-- The view `cohort`: every trial whose first week the run reads (eval_start_date in one of the run's ranges), with
-- the bounds of that week as timestamps, computed once per trial here rather than once per event in the queries
-- that join to it (a date made a timestamp is a calendar conversion on Spark: ~7% of a range's CPU).
-- instance_id is unique in evaluations (checked before anything is staged): no DISTINCT.
SELECT
  instance_id,
  eval_start_date,
  CAST(eval_start_date AS TIMESTAMP) AS week_start,
  CAST(CAST(date_add(eval_start_date, :first_week_days) AS DATE) AS TIMESTAMP) AS week_end
FROM evaluations
WHERE {{ starts_in }}
