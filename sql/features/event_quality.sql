-- The checks of the cohorts' events (the view `events`: deduplicated, with what they need of their trial), added up
-- from the counts per instance that week1_features.sql takes in the same pass as the features: contract violations
-- (errors) and documented handlings (counted and logged): before eval start, or inside the first week but received
-- after the cutoff (late arrivals); types outside the configuration (counted in w1_events only). The clean rows after
-- the first week are not in the view (cohort_events.sql): the job counts them from the files' footers.
SELECT
{%- for counter in check_counters %}
  SUM({{ counter }}) AS {{ counter }}{{ "," if not loop.last }}
{%- endfor %}
FROM week1_features
