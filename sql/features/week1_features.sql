-- First-week features of every instance in the view `cohort`, from the view `events` (cohort_events.sql). Point in
-- time: only events with eval_start <= event_time < eval_start + :first_week_days days that had been received before
-- that cutoff count (`in_first_week`). Instances without such events get zeros. Jinja renders the configured count
-- features (sql/features/feature_config.yaml); values are named parameters (:name).
WITH w1_events AS (
  SELECT instance_id, user_id, event_type, platform, day_index, hours_since_start
  FROM events
  WHERE in_first_week
),
-- One row per instance, user and day: the only aggregation over raw events; all else derives from it.
user_days AS (
  SELECT
    instance_id,
    user_id,
    day_index,
{%- for feature, event_types in count_features.items() %}
    SUM(CASE WHEN event_type IN ({{ event_types | sql_list }}) THEN 1 ELSE 0 END) AS {{ feature }},
{%- endfor %}
    SUM(CASE WHEN platform IN ({{ mobile_platforms | sql_list }}) THEN 1 ELSE 0 END) AS mobile_usage,
    COUNT(*) AS events,
    MIN(CASE WHEN event_type IN ({{ key_event_types | sql_list }}) THEN hours_since_start END) AS first_key_hours
  FROM w1_events
  GROUP BY instance_id, user_id, day_index
),
-- One row per instance, in one aggregation (on Spark without a shuffle: `events` is distributed by instance): a
-- user_days row is one active user on one day, so per-day sums give the daily active users (one term per day of the
-- first week, listed by Jinja).
instance_summary AS (
  SELECT
    instance_id,
{%- for feature in count_features %}
    SUM({{ feature }}) AS {{ feature }},
{%- endfor %}
    COUNT(DISTINCT user_id) AS w1_active_users,
    COUNT(*) AS w1_agg_active_users,
{%- if first_week_days > 1 %}
    GREATEST(
{%- for day in range(first_week_days) %}
      SUM(CASE WHEN day_index = {{ day }} THEN 1 ELSE 0 END){{ "," if not loop.last }}
{%- endfor %}
    ) AS w1_max_active_users,
{%- else %}
    COUNT(*) AS w1_max_active_users,
{%- endif %}
{%- for day in range(first_week_days) %}
    MAX(CASE WHEN day_index = {{ day }} THEN 1 ELSE 0 END){{ " +" if not loop.last else " AS w1_active_days," }}
{%- endfor %}
    -- events in the last three days minus events in the first three days
    SUM(CASE WHEN day_index >= :first_week_days - 3 THEN events WHEN day_index < 3 THEN -events ELSE 0 END) AS trend_events,
    SUM(mobile_usage) AS mobile_usage,
    SUM(events) AS w1_events,
    MIN(first_key_hours) AS hours_to_first_key_action
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
  CAST(COALESCE(s.trend_events / s.w1_events, 0.0) AS DOUBLE) AS w1_activity_trend,
  -- never reaching a key action in week 1 is encoded as the full week
  CAST(COALESCE(s.hours_to_first_key_action, :first_week_days * 24.0) AS DOUBLE) AS hours_to_first_key_action
FROM cohort AS c
LEFT JOIN instance_summary AS s ON s.instance_id = c.instance_id
