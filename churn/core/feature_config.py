"""The feature configuration: which event types feed which count feature, and the output schema."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from churn.core.settings import DEFAULT_FEATURE_CONFIG, Settings

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

@dataclass(frozen=True)
class FeatureSpec:
    """One feature's facts, declared once: its column type, what it means to a person, which way it points, the
    values it can take (scoring refuses rows outside them) and whether drift is measured on it. The table schema,
    scoring's range check, the drift profile, reasons and the synthetic generator all read these."""

    name: str
    athena_type: str  # bigint | double | int
    label: str
    direction: str = "none"  # up: more never lowers p_retained; down: more never raises it; none: learned
    low: float | None = 0.0  # smallest valid value (None: unbounded; NULL is always allowed)
    high: float | None = None  # largest valid value
    high_is_first_week_hours: bool = False  # high = 24 x CHURN_FIRST_WEEK_DAYS (a time inside the observed week)
    integral: bool = False  # only whole values (a weekday)
    drift_exempt: bool = False  # constant within a day's cohort by construction: PSI against a window is meaningless

    def bounds(self, first_week_days: int) -> tuple[float | None, float | None]:
        return self.low, (24.0 * first_week_days if self.high_is_first_week_hours else self.high)


# Always-computed features, after the configured count features, in table order (sql/features/week1_features.sql).
DERIVED_SPECS: tuple[FeatureSpec, ...] = (
    FeatureSpec("w1_active_users", "bigint", "active users"),
    FeatureSpec("w1_agg_active_users", "bigint", "user-days of activity"),
    FeatureSpec("w1_max_active_users", "bigint", "users active on the busiest day"),
    FeatureSpec("mobile_usage", "bigint", "events on mobile"),
    FeatureSpec("w1_events", "bigint", "events"),
    FeatureSpec("w1_active_days", "bigint", "active days", direction="up"),
    FeatureSpec("w1_activity_trend", "double", "activity trend (2nd half vs 1st)", low=None),
    FeatureSpec("hours_to_first_key_action", "double", "hours to the first key action", high_is_first_week_hours=True),
)
# Known at sign-up, computed in sql/features/feature_table.sql (not from events), after the derived ones.
SIGNUP_SPECS: tuple[FeatureSpec, ...] = (
    # 1 = Monday … 7 = Sunday: week-1 activity has weekends in it
    FeatureSpec("eval_start_weekday", "int", "start weekday (1 = Monday)", low=1, high=7, integral=True,
                drift_exempt=True),
)
DERIVED_FEATURES: list[tuple[str, str]] = [(f.name, f.athena_type) for f in DERIVED_SPECS]
SIGNUP_FEATURES: list[tuple[str, str]] = [(f.name, f.athena_type) for f in SIGNUP_SPECS]
KEY_COLUMNS: list[tuple[str, str]] = [("instance_id", "string"), ("eval_start_date", "date")]
LABEL_COLUMN = ("retained", "int")
FEATURE_TABLES = ("instances_w1", "instances_modeling")
TOP_LEVEL_KEYS = ("count_features", "mobile_platforms", "key_event_types", "attribute_features")
ATTRIBUTE_KEYS = ("column", "ranks", "label", "direction")
COUNT_KEYS = ("event_types", "direction", "label")
DIRECTIONS = {"up": 1, "down": -1, "none": 0}
BUILTIN_SPECS = {f.name: f for f in (*DERIVED_SPECS, *SIGNUP_SPECS)}


class FeatureConfigError(ValueError):
    """The feature configuration file is unusable; the message names the file and the entry."""


@dataclass(frozen=True)
class AttributeFeature:
    """A sign-up attribute of the evaluation (an extra column of ``evaluations``) as an ordinal rank.

    Known at eval start, so it is point-in-time safe. ``ranks`` lists the values in order (rank 1, 2, …);
    any other value, a null, or a missing column gives NULL (imputed by the model, counted and logged).
    """

    name: str
    column: str
    ranks: tuple[str, ...]


@dataclass(frozen=True)
class FeatureConfig:
    count_features: dict[str, list[str]]
    mobile_platforms: list[str]
    key_event_types: list[str]
    source: str = "<memory>"
    attribute_features: tuple[AttributeFeature, ...] = ()
    # declared per feature in the configuration; features not named have no direction and their own name
    directions: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    def specs(self) -> dict[str, FeatureSpec]:
        """Every feature's spec, in table order: the configured counts, the built-in ones, the sign-up ranks."""
        counts = [FeatureSpec(n, "bigint", self.labels.get(n, n.replace("_", " ")), self.directions.get(n, "none"))
                  for n in self.count_features]
        attributes = [FeatureSpec(a.name, "double", self.labels.get(a.name, a.name.replace("_", " ")),
                                  self.directions.get(a.name, "none"), low=1, high=len(a.ranks))
                      for a in self.attribute_features]
        return {f.name: f for f in (*counts, *DERIVED_SPECS, *SIGNUP_SPECS, *attributes)}

    def spec(self, feature: str) -> FeatureSpec:
        """The spec of a feature; one the configuration does not know (an older model's) is a plain count."""
        return self.specs().get(feature) or FeatureSpec(feature, "bigint", feature.replace("_", " "))

    def direction(self, feature: str) -> int:
        """+1 (more never lowers p_retained), -1 (more never raises it) or 0 (the model learns the shape)."""
        return DIRECTIONS[self.spec(feature).direction]

    def label(self, feature: str) -> str:
        """What a feature means to a person (``issues completed``), for reasons and reports."""
        return self.spec(feature).label

    @property
    def known_event_types(self) -> set[str]:
        return {t for types in self.count_features.values() for t in types} | set(self.key_event_types)

    def week1_columns(self) -> list[tuple[str, str]]:
        """(name, athena type) of the features computed from week-1 events (sql/features/week1_features.sql)."""
        return [(name, "bigint") for name in self.count_features] + DERIVED_FEATURES

    def feature_columns(self) -> list[tuple[str, str]]:
        """(name, athena type) of every feature column, in table order (attribute ranks are double: NULL-able)."""
        return [(f.name, f.athena_type) for f in self.specs().values()]

    def table_columns(self, table: str) -> list[tuple[str, str]]:
        """All non-partition columns of a feature table, in order."""
        label = [LABEL_COLUMN] if table == "instances_modeling" else []
        return KEY_COLUMNS + label + self.feature_columns()


def _read_config(path: str, settings: Settings | None) -> str:
    """The configuration's text, from a local file or (an EMR job, a shared configuration) an s3:// URI."""
    if "://" in path:
        from churn.core import storage

        try:
            return storage.read_bytes(path, settings or Settings()).decode()
        except FileNotFoundError:
            raise FeatureConfigError(f"feature configuration {path} does not exist (setting CHURN_FEATURE_CONFIG)") from None
    if not Path(path).is_file():
        raise FeatureConfigError(f"feature configuration {path} does not exist (setting CHURN_FEATURE_CONFIG)")
    return Path(path).read_text()


def load_feature_config(settings: Settings | None = None, path: str | Path | None = None) -> FeatureConfig:
    """The configuration at ``path``, or at the setting ``feature_config``, or the packaged default."""
    if path is None and settings is None:
        raise TypeError("load_feature_config needs settings or an explicit path")
    path = str(path or (settings.feature_config if settings else None) or DEFAULT_FEATURE_CONFIG)
    raw = yaml.safe_load(_read_config(path, settings)) or {}
    if not isinstance(raw, dict):
        raise FeatureConfigError(f"{path}: expected a mapping with keys {', '.join(TOP_LEVEL_KEYS)}")
    _no_unknown_keys(raw, TOP_LEVEL_KEYS, f"{path}")
    raw_counts = raw.get("count_features")
    if not isinstance(raw_counts, dict) or not raw_counts:
        raise FeatureConfigError(f"{path}: 'count_features' must map feature names to lists of event types")
    reserved = {name for name, _ in DERIVED_FEATURES + SIGNUP_FEATURES + KEY_COLUMNS} | {LABEL_COLUMN[0], "dt"}
    counts, directions, labels = {}, {}, {}
    for name, spec in raw_counts.items():
        if not _IDENTIFIER.match(str(name)):
            raise FeatureConfigError(f"{path}: feature name {name!r} must match {_IDENTIFIER.pattern}")
        if name in reserved:
            raise FeatureConfigError(f"{path}: feature name {name!r} is reserved for a built-in column")
        if isinstance(spec, dict):  # {event_types: [...], direction: up|down|none, label: "..."}
            _no_unknown_keys(spec, COUNT_KEYS, f"{path}: feature {name!r}")
            _described(spec, f"{path}: feature {name!r}", str(name), directions, labels)
            types = spec.get("event_types")
        else:
            types = spec
        if not isinstance(types, list) or not types or not all(isinstance(t, str) and t for t in types):
            raise FeatureConfigError(f"{path}: feature {name!r} needs a non-empty list of event type strings "
                                     "(a list, or 'event_types:' in a mapping)")
        counts[str(name)] = list(types)
    attributes = []
    for name, spec in (raw.get("attribute_features") or {}).items():
        if not _IDENTIFIER.match(str(name)) or name in reserved or name in counts:
            raise FeatureConfigError(f"{path}: attribute feature name {name!r} is invalid or already used")
        if not isinstance(spec, dict):
            raise FeatureConfigError(f"{path}: attribute feature {name!r} needs 'column' and 'ranks'")
        _no_unknown_keys(spec, ATTRIBUTE_KEYS, f"{path}: attribute feature {name!r}")
        _described(spec, f"{path}: attribute feature {name!r}", str(name), directions, labels)
        column, ranks = spec.get("column"), spec.get("ranks")
        if not isinstance(column, str) or not _IDENTIFIER.match(column):
            raise FeatureConfigError(f"{path}: attribute feature {name!r} needs 'column', an evaluations column name")
        if not isinstance(ranks, list) or not ranks or not all(isinstance(v, str) for v in ranks):
            raise FeatureConfigError(f"{path}: attribute feature {name!r} needs 'ranks', a list of values in order")
        attributes.append(AttributeFeature(str(name), column, tuple(ranks)))
    platforms, key_types = raw.get("mobile_platforms") or ["mobile"], raw.get("key_event_types") or []
    for key, values in (("mobile_platforms", platforms), ("key_event_types", key_types)):
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            raise FeatureConfigError(f"{path}: '{key}' must be a list of non-empty strings")
    values = [*platforms, *key_types, *(t for ts in counts.values() for t in ts), *(v for a in attributes for v in a.ranks)]
    bad = [v for v in values if any(ord(ch) < 32 for ch in v)]
    if bad:
        raise FeatureConfigError(f"{path}: values may not contain control characters (newline, tab …): {bad[:3]!r}")
    return FeatureConfig(
        count_features=counts,
        mobile_platforms=list(platforms),
        key_event_types=list(key_types),
        source=str(path),
        attribute_features=tuple(attributes),
        directions=directions,
        labels=labels,
    )


def _described(spec: dict, where: str, name: str, directions: dict, labels: dict) -> None:
    """The optional ``direction`` and ``label`` of a feature entry, checked."""
    direction = spec.get("direction")
    if direction is not None:
        if direction not in DIRECTIONS:
            raise FeatureConfigError(f"{where}: direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
        if direction != "none":
            directions[name] = direction
    label = spec.get("label")
    if label is not None:
        if not isinstance(label, str) or not label.strip() or any(ord(ch) < 32 for ch in label):
            raise FeatureConfigError(f"{where}: label must be a one-line text, got {label!r}")
        labels[name] = label.strip()


def _no_unknown_keys(mapping: dict, allowed: tuple[str, ...], where: str) -> None:
    """A typo (``mobile_platform:``) must not be silently ignored."""
    unknown = sorted(str(k) for k in mapping if k not in allowed)
    if unknown:
        import difflib

        hints = [f"{k!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, allowed, n=1)) else repr(k)
                 for k in unknown]
        raise FeatureConfigError(f"{where}: unknown key {', '.join(hints)}; allowed keys: {', '.join(allowed)}")
