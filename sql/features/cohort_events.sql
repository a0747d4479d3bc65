-- The view `events`: the cohorts' events, exact duplicates (every column equal) dropped; `copies` counts
-- the rows each one was read as. Only the cohorts' trials are deduplicated (a semi-join first): a daily run
-- reads every trial's events of the days it needs, and only the day's cohorts' share of them is shuffled.
SELECT
  instance_id,
  user_id,
  CAST(event_time AS TIMESTAMP) AS event_time,
  event_type,
  platform,
  {{ received_at }} AS received_at,
  CAST(dt AS STRING) AS dt,
  COUNT(*) AS copies
FROM events_raw
WHERE instance_id IN (SELECT instance_id FROM cohort)
GROUP BY instance_id, user_id, CAST(event_time AS TIMESTAMP), event_type, platform, {{ received_at }}, CAST(dt AS STRING)
