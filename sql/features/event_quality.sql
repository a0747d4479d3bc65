-- The checks of the cohorts' events (the view `events`, deduplicated, joined to its trial): contract violations
-- (errors) and documented handlings (counted and logged): before eval start, or inside the first week but received
-- after the cutoff (late arrivals); types outside the configuration (counted in w1_events only). The clean rows
-- after the first week are not in the view (cohort_events.sql): the job counts them from the files' footers.
-- One row per event type: the job adds them up, and names the most frequent unknown types from the same rows.
SELECT
  e.event_type,
  COUNT(*) AS cohort_events,
  SUM(e.copies) AS cohort_rows,
  SUM(CASE WHEN e.user_id IS NULL OR e.event_time IS NULL OR e.event_type IS NULL THEN 1 ELSE 0 END) AS null_keys,
  SUM(CASE WHEN to_date(e.event_time) <> CAST(e.dt AS DATE) THEN 1 ELSE 0 END) AS outside_partition,
  SUM(CASE WHEN e.event_time < c.week_start THEN 1 ELSE 0 END) AS cohort_before_eval_start,
  SUM(CASE WHEN e.event_time >= c.week_start
        AND e.event_time < c.week_end
        AND e.received_at >= c.week_end
      THEN 1 ELSE 0 END) AS cohort_received_late,
  SUM(CASE WHEN e.event_type NOT IN ({{ known_event_types | sql_list }}) THEN 1 ELSE 0 END) AS unknown_event_type
FROM events AS e
JOIN cohort AS c ON c.instance_id = e.instance_id
GROUP BY e.event_type
