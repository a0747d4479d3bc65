"""churn_outreach: who to contact through which channel after scoring, learned when outcomes arrive."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, PartitionedAssetTimetable, dag, task

from churn.core.tables import INSTANCES_MODELING, OUTREACH_ASSIGNMENTS, OUTREACH_EFFECT, PREDICTIONS
from churn.dag_support import runs, tasks

MODELING, SCORED = tasks.asset(INSTANCES_MODELING), tasks.asset(PREDICTIONS)
ASSIGNMENTS, EFFECT = tasks.asset(OUTREACH_ASSIGNMENTS), tasks.asset(OUTREACH_EFFECT)

DOC = """
### churn_outreach — which at-risk trials to contact, through which channel, learned every day

Scheduled on **either** partitioned asset, like churn_monitoring: each partition starts one run carrying
its key.

* days from `instances_w1_scored` (published by **churn_scoring**) → **assign**:
  `outreach/assignments/dt=D`, one row per scored trial: the channel to contact it through (or `none`),
  whether it is in the holdout, the propensity of that choice, the expected gain and the policy version.
  The CRM or marketing tool picks the partition up. The policy draws each channel's coefficients from
  their posteriors (Thompson sampling) and fills each channel's daily capacity
  (`CHURN_OUTREACH_CHANNELS`, name:cost:capacity) with the trials worth most (conversion value x uplift
  - cost); `CHURN_OUTREACH_HOLDOUT` (10%) of the trials it chose are kept uncontacted, at random but the
  same on a rerun.
* days from `instances_modeling` (outcomes, published by **churn_features**) → **learn**: the outcomes
  known on D are those of the trials assigned on D-23; the policy's posteriors are updated with that
  day only (lambda-learner, yesterday's posterior as the prior, forgetting factor
  `CHURN_OUTREACH_FORGETTING`), a new version in the policy registry (`outreach/policy`), and
  `monitoring/outreach_effect/dt=D`: per channel and segment, contacted vs holdout conversion, uplift
  with a 95% interval, cost per saved conversion. A day is learned once; days are learned in order.

**Manual runs**: params `{"assign": ["2026-01-05"], "learn": []}`; from a shell
`churn outreach assign --ds D` / `churn outreach learn --ds D`.
Query: `churn query "SELECT channel, segment, uplift, uplift_low, uplift_high FROM outreach_effect"`.
"""


@dag(
    dag_id="churn_outreach",
    schedule=PartitionedAssetTimetable(assets=MODELING | SCORED),
    catchup=False,
    max_active_runs=1,  # sequential updates: one day after the other
    dagrun_timeout=timedelta(hours=1),
    default_args=runs.default_task_args(),
    params={
        "assign": Param([], type="array", items={"type": "string", "format": "date"},
                        description="manual runs: scored days to assign outreach for"),
        "learn": Param([], type="array", items={"type": "string", "format": "date"},
                       description="manual runs: days whose outcomes to learn"),
    },
    tags=["churn", "outreach", "policy"],
    doc_md=DOC,
    description=runs.description(DOC),
)
def churn_outreach():
    @task(inlets=[MODELING], outlets=[EFFECT], execution_timeout=timedelta(minutes=30))
    def learn(params=None, triggering_asset_events=None, outlet_events=None) -> dict:
        """Update the policy with the outcomes that arrived, in day order; publish outreach_effect."""
        from churn import jobs
        from churn.core.dates import as_date
        from churn.core.settings import Settings

        by_uri = runs.triggered_days(None, triggering_asset_events)
        days = sorted(set(runs.days_for(by_uri, MODELING.uri)) | {as_date(d) for d in (params or {}).get("learn", [])})
        summary = tasks.run(lambda: jobs.learn_outreach(Settings(), days))
        outlet_events[EFFECT].extra = {"dts": summary["days"]}
        return summary

    @task(inlets=[SCORED], outlets=[ASSIGNMENTS], execution_timeout=timedelta(minutes=30),
          trigger_rule="all_done")  # a failed learning never blocks the day's contacts: the last good policy
    def assign(params=None, triggering_asset_events=None, outlet_events=None) -> dict:
        """Publish the assignments of the scored days (after this run's learning, if any)."""
        from churn import jobs
        from churn.core.dates import as_date
        from churn.core.settings import Settings

        by_uri = runs.triggered_days(None, triggering_asset_events)
        days = sorted(set(runs.days_for(by_uri, SCORED.uri)) | {as_date(d) for d in (params or {}).get("assign", [])})
        summary = tasks.run(lambda: jobs.assign_outreach(Settings(), days))
        outlet_events[ASSIGNMENTS].extra = {"dts": summary["days"]}
        return summary

    learn() >> assign()


churn_outreach()
