-- The checks of the cohorts' events (the view `events`: deduplicated, with what they need of their trial): contract
-- violations (errors) and documented handlings (counted and logged): before eval start, or inside the first week but
-- received after the cutoff (late arrivals); types outside the configuration (counted in w1_events only). The clean
-- rows after the first week are not in the view (cohort_events.sql): the job counts them from the files' footers.
-- One row per event type: the job adds them up, and names the most frequent unknown types from the same rows.
SELECT
  event_type,
  COUNT(*) AS cohort_events,
  SUM(copies) AS cohort_rows,
  SUM(CASE WHEN null_keys THEN 1 ELSE 0 END) AS null_keys,
  SUM(CASE WHEN outside_partition THEN 1 ELSE 0 END) AS outside_partition,
  SUM(CASE WHEN before_eval_start THEN 1 ELSE 0 END) AS cohort_before_eval_start,
  SUM(CASE WHEN received_late THEN 1 ELSE 0 END) AS cohort_received_late,
  SUM(CASE WHEN event_type NOT IN ({{ known_event_types | sql_list }}) THEN 1 ELSE 0 END) AS unknown_event_type
FROM events
GROUP BY event_type
