-- One output table: its cohort (from cohort_<table>.sql) joined to the shared week-1 features (the view
-- `week1_features`, or `week1_published`: the same features as instances_w1 published them),
-- plus what was known at sign-up: the weekday of eval start and the configured sign-up attributes
-- (ordinal ranks of evaluations columns; the view `evaluations` is NULL-filled for absent columns).
-- The tables of a run are staged by one query, a UNION ALL of this per table: every table has the same
-- columns here (`retained` NULL without a label; publishing keeps the table's own) and names itself.
SELECT
  '{{ table_name }}' AS feature_table,
  c.instance_id,
  c.eval_start_date,
{%- if with_label %}
  c.retained,
{%- else %}
  CAST(NULL AS INT) AS retained,
{%- endif %}
{%- for feature in week1_columns %}
  f.{{ feature }},
{%- endfor %}
  -- 1 = Monday … 7 = Sunday; counted from Monday 1970-01-05 (weekday() differs between Spark and DuckDB)
  CAST(datediff(c.eval_start_date, DATE '1970-01-05') % 7 + 1 AS INT) AS eval_start_weekday,
{%- for attribute in attribute_features %}
  CAST(CASE ev.{{ attribute.column }}
{%- for value in attribute.ranks %}
    WHEN {{ [value] | sql_list }} THEN {{ loop.index }}
{%- endfor %}
  END AS DOUBLE) AS {{ attribute.name }},
{%- endfor %}
  c.dt
FROM {{ cohort_view }} AS c
JOIN {{ features_view }} AS f ON f.instance_id = c.instance_id
{%- if attribute_features %}
LEFT JOIN evaluations AS ev ON ev.instance_id = c.instance_id
{%- endif %}
