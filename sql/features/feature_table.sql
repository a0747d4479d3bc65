-- One output table: its cohort (from cohort_<table>.sql) joined to the shared week-1 features.
SELECT
  c.instance_id,
  c.eval_start_date,
{%- if with_label %}
  c.retained,
{%- endif %}
{%- for feature in feature_columns %}
  f.{{ feature }},
{%- endfor %}
  c.dt
FROM {{ cohort_view }} AS c
JOIN week1_features AS f ON f.instance_id = c.instance_id
