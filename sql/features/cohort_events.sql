-- The view `events`: the rows of the cohorts' trials that a feature can read or that break the contract, exact
-- duplicates (every column equal) dropped; `copies` counts the rows each one was read as. Only the cohorts'
-- trials are deduplicated (a join to the cohort first: a daily run reads every trial's events of the days it
-- needs). A clean row dated after its trial's first week is left out before that: a range reads the later days
-- of its trials too (~40% of the cohorts' rows at 10k trials a day), and no feature reads them.
SELECT
  r.instance_id,
  r.user_id,
  CAST(r.event_time AS TIMESTAMP) AS event_time,
  r.event_type,
  r.platform,
  {{ received_at }} AS received_at,
  CAST(r.dt AS STRING) AS dt,
  COUNT(*) AS copies
FROM events_raw AS r
JOIN cohort AS c ON c.instance_id = r.instance_id
WHERE NOT COALESCE(r.user_id IS NOT NULL AND r.event_type IS NOT NULL
  AND CAST(r.event_time AS TIMESTAMP) >= CAST(date_add(c.eval_start_date, :first_week_days) AS TIMESTAMP)
  AND to_date(r.event_time) = CAST(r.dt AS DATE), FALSE)
GROUP BY r.instance_id, r.user_id, CAST(r.event_time AS TIMESTAMP), r.event_type, r.platform, {{ received_at }},
  CAST(r.dt AS STRING)
