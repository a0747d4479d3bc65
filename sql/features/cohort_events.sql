-- The view `events`: the cohorts' events, exact duplicates (every column equal) dropped; `copies` counts
-- the rows each one was read as. Only the cohorts' trials are deduplicated (a semi-join first): a daily run
-- reads every trial's events of the days it needs, and only the day's cohorts' share of them is shuffled.
-- Shuffled by instance_id (Spark; DuckDB ignores DISTRIBUTE BY): the deduplication then needs no shuffle of its own
-- (with nearly every row unique, its map-side pre-aggregation was a second full hash table), and the week-1
-- aggregations by instance read the cached events already partitioned by instance (no further shuffle of events).
SELECT
  instance_id,
  user_id,
  CAST(event_time AS TIMESTAMP) AS event_time,
  event_type,
  platform,
  {{ received_at }} AS received_at,
  CAST(dt AS STRING) AS dt,
  COUNT(*) AS copies
FROM (SELECT * FROM events_raw WHERE instance_id IN (SELECT instance_id FROM cohort) DISTRIBUTE BY instance_id)
GROUP BY instance_id, user_id, CAST(event_time AS TIMESTAMP), event_type, platform, {{ received_at }}, CAST(dt AS STRING)
