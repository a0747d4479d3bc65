-- The view `events`: the rows of the cohorts' trials that a feature can read or that break the contract, exact
-- duplicates (every column equal) dropped; `copies` counts the rows each one was read as. Only the cohorts'
-- trials are deduplicated (a join to the cohort first: a daily run reads every trial's events of the days it
-- needs). A clean row dated after its trial's first week is left out before that: a range reads the later days
-- of its trials too (~40% of the cohorts' rows at 10k trials a day), and no feature reads them.
-- `contract_errors`: the job's predicates of the rows that are errors (QUALITY_ERRORS), kept wherever they are.
--
-- What the features and the checks' counts (week1_features.sql, one pass over this view, which is not stored) need of
-- an event's trial is computed here, once per event, from the join that is made anyway: the reader needs no join to
-- the cohort of its own (at 10k trials a day a 30-day chunk's cohort is 0.6 M trials, probed once per event). The raw
-- columns only this query reads (event_time, received_at, dt) are not kept.
-- The rows are distributed by instance_id before the deduplication: the aggregations by trial that read the view
-- then need no shuffle of their own on Spark (DuckDB ignores it).
SELECT
  instance_id,
  user_id,
  event_type,
  platform,
  copies,
  user_id IS NULL OR event_time IS NULL OR event_type IS NULL AS null_keys,
  {{ outside_partition }} AS outside_partition,
  event_time < week_start AS before_eval_start,
  event_time >= week_start AND event_time < week_end AND received_at >= week_end AS received_late,
  -- point in time: an event counts if it happened in the first week and had been received before its end
  event_time >= week_start AND event_time < week_end AND (received_at IS NULL OR received_at < week_end)
    AS in_first_week,
  -- whole days since eval start (0..6 in the first week), NULL before it: exact integer arithmetic on the microseconds
  -- (the start is midnight UTC), the same on both engines, where to_date(event_time) is a time-zone conversion per event
  -- on Spark (with the partition day's parse, ~11% of a chunk's CPU in a profile)
  CAST(CASE WHEN event_time >= week_start THEN (unix_micros(event_time) - unix_micros(week_start)) DIV {{ micros_per_day }}
    END AS INT) AS day_index,
  -- exact to the microsecond, as a double: the same number on Spark and DuckDB
  CAST(unix_micros(event_time) - unix_micros(week_start) AS DOUBLE) / 3600000000.0 AS hours_since_start
FROM (
  SELECT
    instance_id,
    user_id,
    CAST(event_time AS TIMESTAMP) AS event_time,
    event_type,
    platform,
    {{ received_at }} AS received_at,
    dt,  -- a DATE, typed when the files are read: converted once per partition, not per event
    -- the trial's, one value per instance_id: grouping by them splits no group
    eval_start_date,
    week_start,
    week_end,
    COUNT(*) AS copies
  FROM (
    SELECT r.*, c.eval_start_date, c.week_start, c.week_end
    FROM events_raw AS r
    JOIN cohort AS c ON c.instance_id = r.instance_id
    DISTRIBUTE BY r.instance_id
  ) AS e
  WHERE ({{ contract_errors }})
    OR NOT COALESCE(CAST(event_time AS TIMESTAMP) >= week_end, FALSE)
  GROUP BY instance_id, user_id, CAST(event_time AS TIMESTAMP), event_type, platform, {{ received_at }},
    dt, eval_start_date, week_start, week_end
) AS deduplicated
