-- The view `events`: the rows of the cohorts' trials that a feature can read or that break the contract, exact
-- duplicates (every column equal) dropped; `copies` counts the rows each one was read as. Only the cohorts'
-- trials are deduplicated (a join to the cohort first: a daily run reads every trial's events of the days it
-- needs). A clean row dated after its trial's first week is left out before that: a range reads the later days
-- of its trials too (~40% of the cohorts' rows at 10k trials a day), and no feature reads them.
-- `contract_errors`: the job's predicates of the rows that are errors (QUALITY_ERRORS), kept wherever they are.
SELECT
  instance_id,
  user_id,
  CAST(event_time AS TIMESTAMP) AS event_time,
  event_type,
  platform,
  {{ received_at }} AS received_at,
  CAST(dt AS STRING) AS dt,
  COUNT(*) AS copies
FROM (
  SELECT r.*, c.week_end
  FROM events_raw AS r
  JOIN cohort AS c ON c.instance_id = r.instance_id
) AS e
WHERE ({{ contract_errors }})
  OR NOT COALESCE(CAST(event_time AS TIMESTAMP) >= week_end, FALSE)
GROUP BY instance_id, user_id, CAST(event_time AS TIMESTAMP), event_type, platform, {{ received_at }}, CAST(dt AS STRING)
