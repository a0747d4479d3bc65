-- First-week features of every instance in the view `cohort`, from the view `events` (cohort_events.sql), and the
-- checks' counts of those events per instance (summed by event_quality.sql): one pass over the deduplicated events,
-- which are then never stored (on Spark, caching 79 M of them for a second reader cost more than computing them:
-- a 30-day chunk at 10k trials a day went from ~205 to ~140 s; docs/benchmarks.md). Point in time: only events with
-- eval_start <= event_time < eval_start + :first_week_days days that had been received before that cutoff count
-- (`in_first_week`); the other rows of the view are counted by the checks only. Instances without such events get
-- zeros. Jinja renders the configured count features (sql/features/feature_config.yaml); values are named
-- parameters (:name).
WITH
-- One row per instance, user and day: the only aggregation over the events; all else derives from it. A group
-- without first-week events (events = 0: before eval start, received late, a contract error) adds to the checks only.
user_days AS (
  SELECT
    instance_id,
    user_id,
    day_index,
{%- for feature, event_types in count_features.items() %}
    SUM(CASE WHEN in_first_week AND event_type IN ({{ event_types | sql_list }}) THEN 1 ELSE 0 END) AS {{ feature }},
{%- endfor %}
    SUM(CASE WHEN in_first_week AND platform IN ({{ mobile_platforms | sql_list }}) THEN 1 ELSE 0 END) AS mobile_usage,
    SUM(CASE WHEN in_first_week THEN 1 ELSE 0 END) AS events,
    MIN(CASE WHEN in_first_week AND event_type IN ({{ key_event_types | sql_list }}) THEN hours_since_start END)
      AS first_key_hours,
    -- the checks (event_quality.sql): contract violations, and the documented handlings that are counted and logged
    COUNT(*) AS cohort_events,
    SUM(copies) AS cohort_rows,
    SUM(CASE WHEN null_keys THEN 1 ELSE 0 END) AS null_keys,
    SUM(CASE WHEN outside_partition THEN 1 ELSE 0 END) AS outside_partition,
    SUM(CASE WHEN before_eval_start THEN 1 ELSE 0 END) AS cohort_before_eval_start,
    SUM(CASE WHEN received_late THEN 1 ELSE 0 END) AS cohort_received_late,
    SUM(CASE WHEN event_type NOT IN ({{ known_event_types | sql_list }}) THEN 1 ELSE 0 END) AS unknown_event_type
  FROM events
  GROUP BY instance_id, user_id, day_index
),
instance_summary AS (
  SELECT
    instance_id,
{%- for feature in count_features %}
    SUM({{ feature }}) AS {{ feature }},
{%- endfor %}
    -- a user_days row with first-week events is one active user on one day, so per-day sums give the daily active
    -- users (one term per day of the first week, listed by Jinja)
    COUNT(DISTINCT CASE WHEN events > 0 THEN user_id END) AS w1_active_users,
    SUM(CASE WHEN events > 0 THEN 1 ELSE 0 END) AS w1_agg_active_users,
{%- if first_week_days > 1 %}
    GREATEST(
{%- for day in range(first_week_days) %}
      SUM(CASE WHEN day_index = {{ day }} AND events > 0 THEN 1 ELSE 0 END){{ "," if not loop.last }}
{%- endfor %}
    ) AS w1_max_active_users,
{%- else %}
    SUM(CASE WHEN events > 0 THEN 1 ELSE 0 END) AS w1_max_active_users,
{%- endif %}
{%- for day in range(first_week_days) %}
    MAX(CASE WHEN day_index = {{ day }} AND events > 0 THEN 1 ELSE 0 END){{ " +" if not loop.last else " AS w1_active_days," }}
{%- endfor %}
    -- events in the last three days minus events in the first three days
    SUM(CASE WHEN day_index >= :first_week_days - 3 THEN events WHEN day_index < 3 THEN -events ELSE 0 END) AS trend_events,
    SUM(mobile_usage) AS mobile_usage,
    SUM(events) AS w1_events,
    MIN(first_key_hours) AS hours_to_first_key_action,
{%- for counter in check_counters %}
    SUM({{ counter }}) AS {{ counter }}{{ "," if not loop.last }}
{%- endfor %}
  FROM user_days
  GROUP BY instance_id
)
SELECT
  c.instance_id,
{%- for feature in count_features %}
  CAST(COALESCE(s.{{ feature }}, 0) AS BIGINT) AS {{ feature }},
{%- endfor %}
  CAST(COALESCE(s.w1_active_users, 0) AS BIGINT) AS w1_active_users,
  CAST(COALESCE(s.w1_agg_active_users, 0) AS BIGINT) AS w1_agg_active_users,
  CAST(COALESCE(s.w1_max_active_users, 0) AS BIGINT) AS w1_max_active_users,
  CAST(COALESCE(s.mobile_usage, 0) AS BIGINT) AS mobile_usage,
  CAST(COALESCE(s.w1_events, 0) AS BIGINT) AS w1_events,
  CAST(COALESCE(s.w1_active_days, 0) AS BIGINT) AS w1_active_days,
  -- (events in the last three days - events in the first three) / all events, in [-1, 1]
  CAST(COALESCE(s.trend_events / NULLIF(s.w1_events, 0), 0.0) AS DOUBLE) AS w1_activity_trend,
  -- never reaching a key action in week 1 is encoded as the full week
  CAST(COALESCE(s.hours_to_first_key_action, :first_week_days * 24.0) AS DOUBLE) AS hours_to_first_key_action,
  -- the checks' counts of the instance's events (no events: none)
{%- for counter in check_counters %}
  CAST(COALESCE(s.{{ counter }}, 0) AS BIGINT) AS {{ counter }}{{ "," if not loop.last }}
{%- endfor %}
FROM cohort AS c
LEFT JOIN instance_summary AS s ON s.instance_id = c.instance_id
