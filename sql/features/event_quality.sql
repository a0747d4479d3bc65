-- One pass over the event partitions a run reads, joined to the run's cohorts (the optimiser picks the join:
-- a daily cohort is broadcast, a long range's is not):
-- contract violations (errors) and documented handlings (counted and logged).
-- outside_cohorts: events of trials outside this run's cohorts (their later days, or unknown instances).
SELECT
  COUNT(*) AS events_read,
  SUM(CASE WHEN e.instance_id IS NULL OR e.user_id IS NULL OR e.event_time IS NULL OR e.event_type IS NULL
      THEN 1 ELSE 0 END) AS null_keys,
  SUM(CASE WHEN CAST(to_date(e.event_time) AS STRING) <> e.dt THEN 1 ELSE 0 END) AS outside_partition,
  SUM(CASE WHEN e.instance_id IS NOT NULL AND c.instance_id IS NULL THEN 1 ELSE 0 END) AS outside_cohorts,
  SUM(CASE WHEN c.instance_id IS NOT NULL AND e.event_time < CAST(c.eval_start_date AS TIMESTAMP)
      THEN 1 ELSE 0 END) AS cohort_before_eval_start,
  SUM(CASE WHEN c.instance_id IS NOT NULL
        AND e.event_time >= CAST(date_add(c.eval_start_date, :first_week_days) AS TIMESTAMP)
      THEN 1 ELSE 0 END) AS cohort_after_first_week,
  SUM(CASE WHEN c.instance_id IS NOT NULL
        AND e.event_time >= CAST(c.eval_start_date AS TIMESTAMP)
        AND e.event_time < CAST(date_add(c.eval_start_date, :first_week_days) AS TIMESTAMP)
        AND e.received_at >= CAST(date_add(c.eval_start_date, :first_week_days) AS TIMESTAMP)
      THEN 1 ELSE 0 END) AS cohort_received_late,
  SUM(CASE WHEN e.event_type NOT IN ({{ known_event_types | sql_list }}) THEN 1 ELSE 0 END) AS unknown_event_type
FROM events AS e
LEFT JOIN cohort AS c ON c.instance_id = e.instance_id
