"""Simulated raw data for a Jira-like product's trials ("evaluations"), in the exact raw contract.

The world: every day some instances start an evaluation. An instance is a team (1..30 users) with
latent traits — engagement, product fit, team size, a trajectory, and a budget/intent that no event
reveals. The traits drive which users are active each day, how many events of which type they
produce, and the true probability of converting (``p_convert``). Week 1 reveals the traits only
partly, so a week-1 model gets close to, but not above, the ranking quality of ``p_convert``.

Two traps make point-in-time bugs visible: week-2 activity depends strongly on the *realised*
conversion (a feature that leaks week-2 events beats the truth), and a few pre-signup events sit
just before ``eval_start_date`` (features must ignore them). Late-arriving events (``received_at``
hours after ``event_time``) exercise the received-before-cutoff rule.

Everything is vectorised with numpy: per calendar day, counts per (instance, event type) are drawn,
expanded with ``np.repeat`` and turned into Arrow arrays; there is no Python loop over instances or
events. The same seed gives byte-identical files.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from churn.core import storage
from churn.core.contract import EVALUATIONS_SCHEMA, EVENTS_OPTIONAL, EVENTS_SCHEMA
from churn.core.settings import Settings, join
from churn.core.tables import table_location

log = logging.getLogger(__name__)

EVENT_DAYS = 14  # events are simulated for the first two weeks of every evaluation
MAX_USERS = 30
NEVER = 127  # join age of a user who never joins within EVENT_DAYS
US_PER_DAY = 86_400_000_000
US_PER_HOUR = 3_600_000_000
EPOCH = date(1970, 1, 1)

# Event types drawn per active user-day: (name, base share, fit effect, team-size effect).
# The last two are NOT in sql/features/feature_config.yaml: they exercise unknown-type handling.
MIX = [
    ("issue_viewed", 0.330, 0.0, 0.0),
    ("issue_updated", 0.150, 0.1, 0.0),
    ("issue_created", 0.110, 0.1, 0.0),
    ("issue_commented", 0.070, 0.2, 0.3),
    ("issue_assigned", 0.050, 0.4, 0.4),
    ("issue_completed", 0.060, 1.0, 0.0),
    ("watcher_added", 0.015, 0.2, 0.3),
    ("at_mention", 0.030, 0.3, 0.5),
    ("project_created", 0.008, 0.0, 0.0),
    ("sprint_started", 0.006, 1.2, 0.1),
    ("sprint_finished", 0.004, 1.3, 0.1),
    ("page_loaded", 0.060, -0.2, 0.0),
    ("settings_changed", 0.010, 0.0, 0.0),
]
INVITE = "user_invited"  # driven by team members joining, not by the mix
PRE_SIGNUP = "marketing_page_viewed"  # a few events just before eval start; features must ignore them
EVENT_TYPES = [name for name, *_ in MIX] + [INVITE, PRE_SIGNUP]
T_INVITE, T_PRE = len(MIX), len(MIX) + 1
T_PROJECT = EVENT_TYPES.index("project_created")
PLATFORMS = ["web", "mobile"]
EVENTS_FILE_SCHEMA = pa.schema(list(EVENTS_SCHEMA) + list(EVENTS_OPTIONAL))  # the simulator always sets received_at

# Monday..Sunday: sign-ups and activity drop at the weekend.
_SIGNUPS = np.array([1.10, 1.15, 1.12, 1.08, 0.98, 0.55, 0.52])
SIGNUP_WEEKDAY = _SIGNUPS / _SIGNUPS.mean()  # mean 1: about M instances per day over a week
ACTIVITY_WEEKDAY = np.array([1.00, 1.05, 1.05, 1.00, 0.90, 0.35, 0.30])
# Local hour-of-day profiles: office hours on the web, mornings/evenings on mobile.
WEB_HOURS = np.array([.5, .3, .2, .2, .2, .4, 1, 2, 4, 6, 7, 7, 5, 6, 7, 7, 6, 5, 3, 2, 1.5, 1.2, 1, .7])
MOBILE_HOURS = np.array([1, .5, .3, .2, .2, .5, 2, 4, 5, 4, 3, 3, 4, 3, 3, 3, 3, 4, 5, 5, 5, 4, 3, 2])

COUNTRIES = ["US", "GB", "DE", "FR", "IN", "AU", "BR", "JP", "CA", "NL"]
COUNTRY_SHARE = np.array([0.34, 0.10, 0.09, 0.06, 0.12, 0.06, 0.06, 0.05, 0.07, 0.05])
COUNTRY_UTC_OFFSET_H = np.array([-6, 0, 1, 1, 5.5, 10, -3, 9, -5, 1])
SIZE_BANDS = ["1-10", "11-50", "51-200", "201-1000", "1000+"]
CHANNELS = ["organic", "paid_search", "referral", "partner", "marketplace"]

# Week-2 leak trap: activity after the first week follows the realised outcome.
LEAK_RATE = {True: 1.15, False: 0.30}
LEAK_ACTIVE = {True: 1.00, False: 0.45}
RATE_PER_USER_DAY = 14.0  # events per active user-day at average engagement (~150 week-1 events/instance)


@dataclass
class World:
    """Per-instance latent traits and outcomes (arrays of length n, ordered by eval start, then number)."""

    start: date
    days: int
    start_idx: np.ndarray  # day index of eval start
    team: np.ndarray  # team size 1..MAX_USERS
    engagement: np.ndarray
    fit: np.ndarray
    intent: np.ndarray  # budget / purchase intent: drives conversion, no event reveals it
    trajectory: np.ndarray  # activity grows (>0) or fades (<0) over the evaluation
    mobile_share: np.ndarray
    utc_offset_us: np.ndarray
    signup_tod_us: np.ndarray  # signup time of day (UTC) on day 0
    join_age: np.ndarray  # (n, MAX_USERS) int8: eval day on which user j joins; NEVER if not (yet)
    mix: np.ndarray  # (n, len(MIX)) float32 event-type shares
    rate: np.ndarray  # events per active user-day
    active_logit: np.ndarray  # logit of a user being active on a day
    p_convert: np.ndarray
    chance: np.ndarray  # the uniform draw behind converts, for outcomes under outreach
    converts: np.ndarray
    conversion_day: np.ndarray  # days after eval start (valid where converts)
    country: np.ndarray
    size_band: np.ndarray
    channel: np.ndarray
    instance_ids: pa.Array
    user_ids: pa.Array
    user_offset: np.ndarray  # index of user 0 of instance i in user_ids

    @property
    def n(self) -> int:
        return len(self.start_idx)


@dataclass(frozen=True)
class TrackingOutage:
    """A tracking bug: events of ``event_type`` that happen on ``first_day`` .. ``first_day + days - 1`` are never
    sent (a client release dropped them). Nothing the trials do changes, nor does any outcome: only what the
    warehouse sees, which is what monitoring must notice (the demo's incident)."""

    event_type: str
    first_day: date
    days: int

    def __post_init__(self) -> None:
        if self.event_type not in EVENT_TYPES:
            raise ValueError(f"tracking outage: unknown event type {self.event_type!r}; known: {EVENT_TYPES}")

    def dropped(self, world_start: date, d: int, event_type: np.ndarray) -> np.ndarray:
        """Which of day ``d``'s events the outage swallows."""
        offset = (world_start + timedelta(days=d) - self.first_day).days
        if not 0 <= offset < self.days:
            return np.zeros(len(event_type), dtype=bool)
        return event_type == EVENT_TYPES.index(self.event_type)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _rng(seed: int, stream: int, day: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream, day]))


def _instances(start: date, days: int, instances_per_day: int, seed: int) -> World:
    """Draw every instance's traits, team, event mix and conversion outcome."""
    rng = _rng(seed, 0)
    weekday = np.array([(start + timedelta(days=d)).weekday() for d in range(days)])
    per_day = rng.poisson(instances_per_day * SIGNUP_WEEKDAY[weekday])
    n = int(per_day.sum())
    start_idx = np.repeat(np.arange(days, dtype=np.int32), per_day)
    number = np.arange(n) - np.repeat(np.cumsum(per_day) - per_day, per_day)

    engagement = rng.standard_normal(n)
    fit = rng.standard_normal(n)
    intent = rng.standard_normal(n)
    trajectory = rng.standard_normal(n)
    team = np.clip(np.round(np.exp(rng.normal(1.2 + 0.25 * intent, 0.8))), 1, MAX_USERS).astype(np.int16)
    log_team = np.log(team)

    # Who joins when: invited users arrive at geometric times, sooner in engaged, well-fitting teams.
    hazard = _sigmoid(-1.6 + 0.5 * engagement + 0.3 * fit)
    join = rng.geometric(np.repeat(hazard, MAX_USERS).reshape(n, MAX_USERS)) - 1
    join[:, 0] = 0
    join[(np.arange(MAX_USERS)[None, :] >= team[:, None]) | (join >= EVENT_DAYS)] = NEVER
    join_age = join.astype(np.int8)

    base, fit_effect, team_effect = (np.array(col, dtype=float) for col in list(zip(*MIX, strict=True))[1:])
    weights = base[None, :] * np.exp(fit[:, None] * fit_effect[None, :] + log_team[:, None] * team_effect[None, :])
    mix = (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)
    rate = RATE_PER_USER_DAY * np.exp(0.45 * engagement - 0.1) * rng.lognormal(0.0, 0.15, n)
    active_logit = 0.1 + 0.9 * engagement + 0.3 * fit

    logit = -2.4 + 1.2 * engagement + 1.0 * fit + 0.5 * log_team + 0.35 * intent + 0.45 * trajectory
    p_convert = _sigmoid(logit)
    chance = rng.random(n)  # kept: a trial converts under a channel iff chance < its probability under it
    converts = chance < p_convert
    # Conversion timing: early buyers, a crowd at the end of the 30-day trial, and stragglers.
    kind = rng.choice(3, size=n, p=[0.50, 0.40, 0.10])
    conversion_day = np.select(
        [kind == 0, kind == 1],
        [rng.integers(0, 28, n), np.round(rng.normal(27.5, 1.5, n))],
        rng.integers(30, 46, n),
    ).clip(0, 45).astype(np.int32)

    country = rng.choice(len(COUNTRIES), size=n, p=COUNTRY_SHARE)
    size_band = np.clip(np.floor(np.log(team) / np.log(3) + 0.4 * intent + rng.normal(0, 0.6, n)), 0, 4).astype(int)
    channel = rng.choice(len(CHANNELS), size=n, p=[0.4, 0.25, 0.15, 0.1, 0.1])
    utc_offset_us = (COUNTRY_UTC_OFFSET_H[country] * US_PER_HOUR).astype(np.int64)
    signup_tod_us = (_local_tod(rng, np.zeros(n, dtype=bool)) - utc_offset_us) % US_PER_DAY

    width = max(5, len(str(int(per_day.max(initial=0)))))
    prefixes = pa.array([f"i-{(start + timedelta(days=d)):%Y%m%d}-" for d in range(days)])
    instance_ids = pc.binary_join_element_wise(
        prefixes.take(pa.array(start_idx)), _padded(number, width), ""
    )
    user_offset = np.cumsum(team, dtype=np.int64) - team
    user_instance = np.repeat(np.arange(n), team)
    user_number = np.arange(len(user_instance)) - np.repeat(user_offset, team)
    user_ids = pc.binary_join_element_wise(
        instance_ids.take(pa.array(user_instance)), _padded(user_number, 2), "-u"
    )
    return World(
        start, days, start_idx, team, engagement, fit, intent, trajectory,
        rng.beta(1.5, 7.0, n), utc_offset_us, signup_tod_us, join_age, mix, rate, active_logit,
        p_convert, chance, converts, conversion_day, country, size_band, channel, instance_ids, user_ids,
        user_offset,
    )


# ---- outreach: how the world responds to a contact right after week 1 (issue 13) -----------------------
# A contact moves a trial's log-odds of converting by  undecided x (base + small + large + mobile terms), where
# undecided = 4 p (1 - p) is 1 for a trial at p = 0.5 and near 0 for trials that will convert anyway or are lost.
# (base, small teams [size bands 1-10, 11-50], large companies [201+], per unit of mobile share); cost per contact.
OUTREACH_EFFECTS = {
    "email": (0.30, 0.00, 0.00, 0.0),
    "chat": (0.40, 0.45, -0.30, 0.0),  # in-app chat: best with small teams
    "push": (-0.60, 0.00, 0.00, 4.0),  # push notifications: only for mobile users, they annoy the others
    "call": (0.70, -0.90, 1.00, 0.0),  # a sales call: large companies gain most, small teams are put off
}
OUTREACH_CHANNELS = ("none", *OUTREACH_EFFECTS)


def outreach_probabilities(p_convert: np.ndarray, size_band: np.ndarray, mobile_share: np.ndarray
                           ) -> dict[str, np.ndarray]:
    """Every trial's true conversion probability under each channel (``none``: its ``p_convert``)."""
    p = np.clip(p_convert, 1e-9, 1 - 1e-9)
    logit = np.log(p / (1 - p))
    undecided = 4 * p * (1 - p)
    small, large = (size_band <= 1).astype(float), (size_band >= 3).astype(float)
    out = {"none": p_convert}
    for channel, (base, on_small, on_large, per_mobile) in OUTREACH_EFFECTS.items():
        shift = undecided * (base + on_small * small + on_large * large + per_mobile * mobile_share)
        out[channel] = _sigmoid(logit + shift)
    return out


def _padded(numbers: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(pc.cast(pa.array(numbers, type=pa.int64()), pa.string()), width, "0")


def _local_tod(rng: np.random.Generator, mobile: np.ndarray) -> np.ndarray:
    """Local time of day in microseconds, from the hour profile of each event's platform."""
    hours = np.empty(len(mobile), dtype=np.int64)
    for is_mobile, profile in ((False, WEB_HOURS), (True, MOBILE_HOURS)):
        where = mobile == is_mobile
        cdf = np.cumsum(profile) / profile.sum()
        hours[where] = np.minimum(np.searchsorted(cdf, rng.random(int(where.sum())), side="right"), 23)
    return hours * US_PER_HOUR + rng.integers(0, US_PER_HOUR, len(mobile))


def _day_events(world: World, d: int, seed: int) -> dict[str, np.ndarray]:
    """All events whose event_time falls on day index ``d``, as numpy columns (unsorted)."""
    rng = _rng(seed, 1, d)
    day_us = (world.start - EPOCH).days * US_PER_DAY + d * US_PER_DAY
    weekday_factor = ACTIVITY_WEEKDAY[(world.start + timedelta(days=d)).weekday()]
    lo, hi = np.searchsorted(world.start_idx, [d - EVENT_DAYS + 1, d + 1])
    rows = np.arange(lo, hi)
    age = d - world.start_idx[rows]

    # Which users are active today: joined, and either active by chance, joining today, or the
    # creator on day 0. Activity fades or grows with the trajectory; after week 1 it follows the outcome.
    week2 = age >= 7
    converts = world.converts[rows]
    leak_active = np.where(week2, np.where(converts, LEAK_ACTIVE[True], LEAK_ACTIVE[False]), 1.0)
    drift = (0.08 * world.trajectory[rows] - 0.06) * age
    p_active = _sigmoid(world.active_logit[rows] + drift) * np.sqrt(weekday_factor) * leak_active
    joined = world.join_age[rows].astype(np.int16)
    p_user = np.clip(p_active[:, None] * np.where(np.arange(MAX_USERS) == 0, 1.3, 1.0)[None, :], 0, 1)
    active = (joined <= age[:, None]) & (
        (rng.random(joined.shape) < p_user) | (joined == age[:, None])
    )
    active_users = active.sum(axis=1)

    leak_rate = np.where(week2, np.where(converts, LEAK_RATE[True], LEAK_RATE[False]), 1.0)
    day0 = np.where(age == 0, 1.6 * (1.0 - world.signup_tod_us[rows] / US_PER_DAY), 1.0)
    intensity = active_users * world.rate[rows] * np.exp(drift) * np.sqrt(weekday_factor) * leak_rate * day0
    counts = np.zeros((len(rows), len(EVENT_TYPES) - 1), dtype=np.int64)
    counts[:, : len(MIX)] = rng.poisson(intensity[:, None] * world.mix[rows])
    # Invites: one per user joining today, plus a few invitations nobody accepts.
    counts[:, T_INVITE] = ((joined == age[:, None]) & (age[:, None] > 0)).sum(axis=1) + rng.poisson(
        0.05 * (active_users > 0)
    )
    counts[:, T_PROJECT] += (age == 0) & (rng.random(len(rows)) < 0.85)  # the first project, on day 0

    flat = np.repeat(np.arange(counts.size), counts.ravel())
    row, event_type = np.divmod(flat, counts.shape[1])
    n_events = len(flat)
    instance = rows[row]
    # Each event belongs to one of the instance's users active today.
    user_rows, user_cols = np.nonzero(active)
    first_active = np.cumsum(active_users) - active_users
    pick = (rng.random(n_events) * active_users[row]).astype(np.int64)
    user_col = user_cols[first_active[row] + pick]

    mobile = (rng.random(n_events) < world.mobile_share[instance]) & (age[row] > 0)
    tod = (_local_tod(rng, mobile) - world.utc_offset_us[instance]) % US_PER_DAY
    # Day 0 starts at sign-up: its events come after the sign-up time, most soon after.
    signup = world.signup_tod_us[instance]
    after_signup = signup + ((US_PER_DAY - 1 - signup) * rng.random(n_events) ** 1.5).astype(np.int64)
    tod = np.where(age[row] == 0, after_signup, tod)
    columns = {
        "instance": instance,
        "user": world.user_offset[instance] + user_col,
        "event_time": day_us + tod,
        "event_type": event_type,
        "platform": mobile.astype(np.int64),
        "age": age[row],
    }
    pre = _pre_signup_events(world, d, rng, day_us)
    return {k: np.concatenate([columns[k], pre[k]]) for k in columns}


def _pre_signup_events(world: World, d: int, rng: np.random.Generator, day_us: int) -> dict[str, np.ndarray]:
    """A few marketing-page events in the hours before midnight of tomorrow's eval starts."""
    lo, hi = np.searchsorted(world.start_idx, [d + 1, d + 2])
    rows = np.arange(lo, hi)
    counts = (rng.random(len(rows)) < 0.2) * (1 + rng.poisson(0.7, len(rows)))
    instance = np.repeat(rows, counts)
    before = rng.integers(1, 8 * US_PER_HOUR, len(instance))
    return {
        "instance": instance,
        "user": world.user_offset[instance],
        "event_time": day_us + US_PER_DAY - before,
        "event_type": np.full(len(instance), T_PRE),
        "platform": np.zeros(len(instance), dtype=np.int64),
        "age": np.full(len(instance), -1),
    }


def _events_table(world: World, cols: dict[str, np.ndarray], rng: np.random.Generator, world_end_us: int):
    """Add arrival times, drop what has not arrived by the end of the world, sort, build Arrow."""
    n = len(cols["instance"])
    mobile = cols["platform"] == 1
    late = rng.random(n) < np.where(mobile, 0.08, 0.02)  # mobile clients sync late more often
    delay = np.where(
        late,
        np.minimum(US_PER_HOUR + rng.exponential(8 * US_PER_HOUR, n), 47 * US_PER_HOUR),
        rng.exponential(30e6, n) + (rng.random(n) < 0.1) * rng.exponential(300e6, n),
    ).astype(np.int64)
    received = cols["event_time"] + delay
    keep = received < world_end_us
    order = np.lexsort((cols["event_time"][keep], cols["instance"][keep]))
    pick = {k: v[keep][order] for k, v in cols.items()}
    received = received[keep][order]
    table = pa.Table.from_arrays(
        [
            world.instance_ids.take(pa.array(pick["instance"])),
            world.user_ids.take(pa.array(pick["user"])),
            pa.array(pick["event_time"], type=pa.timestamp("us", tz="UTC")),
            pa.array(EVENT_TYPES).take(pa.array(pick["event_type"])),
            pa.array(PLATFORMS).take(pa.array(pick["platform"])),
            pa.array(received, type=pa.timestamp("us", tz="UTC")),
        ],
        schema=EVENTS_FILE_SCHEMA,
    )
    return table, int(((pick["age"] >= 0) & (pick["age"] < 7)).sum())


def _parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="snappy")
    return buffer.getvalue()


def _evaluations_table(world: World) -> pa.Table:
    start_days = (world.start - EPOCH).days + world.start_idx
    converted = start_days + world.conversion_day
    known = world.converts & (world.start_idx + world.conversion_day <= world.days - 1)
    schema = pa.schema(
        list(EVALUATIONS_SCHEMA)
        + [pa.field("country", pa.string()), pa.field("company_size_band", pa.string()),
           pa.field("signup_channel", pa.string())]
    )
    return pa.Table.from_arrays(
        [
            world.instance_ids,
            pa.array(start_days.astype(np.int32), type=pa.date32()),
            pa.array(converted.astype(np.int32), type=pa.date32(), mask=~known),
            pa.array(COUNTRIES).take(pa.array(world.country)),
            pa.array(SIZE_BANDS).take(pa.array(world.size_band)),
            pa.array(CHANNELS).take(pa.array(world.channel)),
        ],
        schema=schema,
    )


def _truth_table(world: World) -> pa.Table:
    """The ground truth (never a feature): each trial's true conversion probability without contact
    (``p_convert``) and under every channel (``p_<channel>``), the uniform draw that decides its outcome under
    any of them (``chance``), and the day it would convert after eval start (``conversion_day``, drawn for all)."""
    start_days = ((world.start - EPOCH).days + world.start_idx).astype(np.int32)
    under = outreach_probabilities(world.p_convert, world.size_band, world.mobile_share)
    return pa.Table.from_arrays(
        [
            world.instance_ids,
            pa.array(start_days, type=pa.date32()),
            pa.array(world.p_convert, type=pa.float64()),
            pa.array(world.converts),
            pa.array(world.conversion_day, type=pa.int32(), mask=~world.converts),
            pa.array(world.chance, type=pa.float64()),
            pa.array(world.conversion_day, type=pa.int32()),
            *(pa.array(under[c], type=pa.float64()) for c in OUTREACH_EFFECTS),
        ],
        names=["instance_id", "eval_start_date", "p_convert", "converts", "conversion_day", "chance",
               "conversion_day_any", *(f"p_{c}" for c in OUTREACH_EFFECTS)],
    )


def existing_raw(settings: Settings) -> list[str]:
    return [p for p in (table_location("evaluations", settings), table_location("events", settings)) if storage.list_dir(p, settings)]


def _remove_tree(path: str, settings: Settings) -> None:
    fs = storage.filesystem(path, settings)
    bare = storage.strip_scheme(path)
    if fs.exists(bare):
        fs.rm(bare, recursive=True)


def simulate(
    start: date,
    days: int,
    instances_per_day: int,
    seed: int,
    settings: Settings,
    progress: bool = True,
    overwrite: bool = False,
    outage: TrackingOutage | None = None,
) -> dict:
    """Write a simulated raw dataset (evaluations, events, truth) for eval starts in [start, start+days).

    The world ends at the last day: no event after it, no event received after it, and conversions
    after it are unknown (null). Raises FileExistsError if raw data already exists, unless ``overwrite``.
    """
    if days < 1 or instances_per_day < 0:
        raise ValueError("days must be >= 1 and instances_per_day >= 0")
    existing = existing_raw(settings)
    if existing and not overwrite:
        raise FileExistsError(
            f"raw data already exists at {', '.join(existing)}; refusing to overwrite it "
            "(use --overwrite / overwrite=True to replace the raw dataset)"
        )
    for path in (table_location("evaluations", settings), table_location("events", settings), settings.truth_path):
        _remove_tree(path, settings)

    began = time.perf_counter()
    world = _instances(start, days, instances_per_day, seed)
    world_end_us = ((start - EPOCH).days + days) * US_PER_DAY
    events = week1_events = 0
    with _progress(progress, days) as advance:
        for d in range(days):
            cols = _day_events(world, d, seed)
            if outage is not None:
                kept = ~outage.dropped(start, d, cols["event_type"])
                cols = {k: v[kept] for k, v in cols.items()}
            table, w1 = _events_table(world, cols, _rng(seed, 2, d), world_end_us)
            path = join(table_location("events", settings), f"dt={(start + timedelta(days=d)).isoformat()}", "part-00000.parquet")
            storage.write_bytes(path, _parquet_bytes(table), settings)
            events += table.num_rows
            week1_events += w1
            advance()
    evaluations = _evaluations_table(world)
    storage.write_bytes(join(table_location("evaluations", settings), "part-00000.parquet"), _parquet_bytes(evaluations), settings)
    storage.write_bytes(join(settings.truth_path, "part-00000.parquet"), _parquet_bytes(_truth_table(world)), settings)

    known = evaluations.num_rows - evaluations.column("converted_date").null_count
    observed = world.start_idx + 45 <= days - 1  # cohorts whose whole conversion window is in the past
    summary = {
        "start": start.isoformat(),
        "end": (start + timedelta(days=days - 1)).isoformat(),
        "days": days,
        "seed": seed,
        "instances": world.n,
        "events": events,
        "week1_events_per_instance": round(week1_events / max(world.n, 1), 1),
        "conversions_known": known,
        "conversion_rate_known": round(known / max(world.n, 1), 4),
        "conversion_rate_true": round(float(world.converts.mean()) if world.n else 0.0, 4),
        "conversion_rate_observed_cohorts": round(float(world.converts[observed].mean()), 4) if observed.any() else None,
        "evaluations_path": table_location("evaluations", settings),
        "events_path": table_location("events", settings),
        "truth_path": settings.truth_path,
        "seconds": round(time.perf_counter() - began, 1),
    }
    log.info("simulated %s", summary)
    return summary


def resolve_outreach(assignments, settings: Settings) -> dict:
    """The world's answer to outreach: each assigned trial's outcome under the channel it was given.

    ``assignments``: instance_id, channel (``none`` or a channel of :data:`OUTREACH_EFFECTS`). A trial converts
    under its channel iff its ``chance`` < its probability under that channel (the truth file), on the same
    day it would have converted anyway; ``converted_date`` in the raw evaluations is rewritten for these trials
    (a conversion after the world's last day stays unknown, as in :func:`simulate`). A pure function of the
    truth and the channels: resolving again gives the same table, and ``none`` restores the uncontacted outcome.
    """
    import pandas as pd

    unknown = sorted(set(assignments["channel"]) - set(OUTREACH_CHANNELS))
    if unknown:
        raise ValueError(f"outreach assignments: channel(s) {unknown} are not simulated; the simulator knows "
                         f"{list(OUTREACH_CHANNELS)}")
    truth = pq.read_table(io.BytesIO(storage.read_bytes(join(settings.truth_path, "part-00000.parquet"),
                                                         settings))).to_pandas().set_index("instance_id")
    if "chance" not in truth:
        raise ValueError(f"{settings.truth_path}: written by an older simulator without outreach truth; "
                         "simulate again (churn simulate --overwrite)")
    missing = assignments.loc[~assignments["instance_id"].isin(truth.index), "instance_id"]
    if len(missing):
        raise ValueError(f"outreach assignments: {len(missing)} instance_id(s) are not simulated trials, e.g. "
                         f"{missing.head(5).tolist()}")
    path = join(table_location("evaluations", settings), "part-00000.parquet")
    evaluations = pq.read_table(io.BytesIO(storage.read_bytes(path, settings)))
    frame = evaluations.to_pandas()
    rows = truth.loc[assignments["instance_id"]]
    channel = assignments["channel"].to_numpy()
    under = np.column_stack([rows["p_convert"].to_numpy(), *(rows[f"p_{c}"].to_numpy() for c in OUTREACH_EFFECTS)])
    p = under[np.arange(len(rows)), [OUTREACH_CHANNELS.index(c) for c in channel]]
    converts = rows["chance"].to_numpy() < p
    start = pd.to_datetime(rows["eval_start_date"]).to_numpy()
    converted = start + rows["conversion_day_any"].to_numpy().astype("timedelta64[D]")
    world_end = pd.Timestamp(truth["eval_start_date"].max()).to_datetime64()
    dates = pd.Series(np.where(converts & (converted <= world_end), converted, np.datetime64("NaT")),
                      index=assignments["instance_id"].to_numpy())
    hit = frame["instance_id"].isin(dates.index)
    new = pd.to_datetime(frame["converted_date"])
    new[hit] = frame.loc[hit, "instance_id"].map(dates)
    column = pa.array(new.dt.date.where(new.notna(), None), type=pa.date32())
    table = evaluations.set_column(evaluations.schema.get_field_index("converted_date"), "converted_date", column)
    storage.write_bytes(path, _parquet_bytes(table.cast(evaluations.schema)), settings)
    return {"resolved": int(len(assignments)), "converted": int(converts.sum()),
            "contacted": int((channel != "none").sum())}


@contextmanager
def _progress(enabled: bool, days: int) -> Iterator[Callable[[], None]]:
    """A rich progress bar over days (yields its advance function), or nothing."""
    if not enabled:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task("simulating days", total=days)
        yield lambda: bar.advance(task)


# ---- command line -----------------------------------------------------------------------------
