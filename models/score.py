"""Daily scoring: partition dt=D of instances_w1 -> the verified champion -> predictions/instances_w1_scored/dt=D.

The champion's stored transform is applied unchanged (no refit on scoring data). If the champion
cannot be verified or the features do not match it, scoring raises and publishes nothing, so the
previous predictions stay in place.
"""

from __future__ import annotations

import logging
import time
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa

from churn.core.feature_config import FeatureConfig, load_feature_config
from churn.core.settings import Settings
from churn.core.tables import INSTANCES_W1, N_REASONS, PREDICTIONS, PREDICTIONS_SCHEMA
from churn.core.warehouse import partition_snapshot, read_partition, write_partition
from churn.models.model import ChurnModel

log = logging.getLogger("churn.score")
OUTPUT_SCHEMA = PREDICTIONS_SCHEMA


def reason_facts(metadata: dict | None, config=None) -> dict[str, tuple[str, float | None, str]]:
    """{feature: (label, median among converting training trials, dtype)} stored with the model at training;
    versions trained before labels existed take the label from ``config`` (the current configuration)."""
    out = {}
    for f in (metadata or {}).get("features", []):
        label = f.get("label") or (config.label(f["name"]) if config else f["name"].replace("_", " "))
        out[f["name"]] = (label, f.get("converted_median"), f.get("dtype", ""))
    return out


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def reason_text(value, label: str, median: float | None, dtype: str) -> str:
    """One reason as a sales rep reads it: ``no issues completed in week 1 (converting trials: median 2)``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        text = f"{label}: unknown"
    elif dtype in ("bigint", "int64", "int32", "int") and "weekday" not in label:
        text = f"no {label} in week 1" if value == 0 else f"{_number(value)} {label} in week 1"
    else:
        text = f"{label} {_number(value)}"
    return text + (f" (converting trials: median {_number(median)})" if median is not None else "")


def reason_texts(frame: pd.DataFrame, names: list[pa.Array], facts: dict) -> list[pa.Array]:
    """The text of every reason slot, from the row's own feature value. Each distinct (feature, value) is
    worded once: counts repeat a lot, and a million rows must not mean three million string formats."""
    out = []
    for slot in names:
        chosen = slot.to_pandas()
        texts = np.full(len(frame), None, dtype=object)
        for feature in chosen.dropna().unique():
            mask = (chosen == feature).to_numpy()
            label, median, dtype = facts.get(feature, (feature.replace("_", " "), None, ""))
            values = pd.Series(frame[feature].to_numpy()[mask])
            codes, distinct = pd.factorize(values, use_na_sentinel=False)  # NaN is one value of its own
            worded = np.array([reason_text(v, label, median, dtype) for v in distinct], dtype=object)
            texts[mask] = worded[codes]
        out.append(pa.array(texts, pa.string()))
    return out


def score_frame(model: ChurnModel, frame: pd.DataFrame, run_date: date, reasons: bool = True,
                approx_reasons: bool = False, features_snapshot_id: int | None = None,
                facts: dict | None = None) -> pa.Table:
    """Scores of one feature frame as an Arrow table with OUTPUT_SCHEMA (reasons null if not asked for).

    Reasons use exact SHAP values by default (~20k rows/s on 2 cores for 200 trees of depth 3: ample
    for a day of new trials); ``approx_reasons`` switches to XGBoost's approximate contributions (~10x faster).
    """
    x = model.matrix(frame)  # schema check: missing / extra / retyped features raise SchemaMismatch
    p = model.predict_proba_matrix(x)
    n = len(frame)
    flagged, rank = model.at_risk(p)  # one day's frame: capacity objectives rank within it
    columns = {
        "instance_id": pa.array(frame["instance_id"].astype(str).to_numpy(), pa.string()),
        "eval_start_date": pa.array(pd.to_datetime(frame["eval_start_date"]).to_numpy().astype("datetime64[D]"),
                                    pa.date32()),
        "p_retained": pa.array(p, pa.float64()),
        "prediction_retained": pa.array((1 - flagged).astype(np.int32)),
        "risk_band": pa.array(model.risk_band(p)),
    }
    names, values = top_reasons(model, x, approx_reasons) if reasons and n else (None, None)
    for k in range(N_REASONS):
        if names is None:
            columns[f"reason_{k + 1}_feature"] = pa.nulls(n, pa.string())
            columns[f"reason_{k + 1}_contribution"] = pa.nulls(n, pa.float64())
        else:
            columns[f"reason_{k + 1}_feature"] = names[k]
            columns[f"reason_{k + 1}_contribution"] = values[k]
    columns["model_version"] = pa.repeat(pa.scalar(model.version, pa.string()), n)
    columns["run_date"] = pa.repeat(pa.scalar(run_date, pa.date32()), n)
    columns["features_snapshot_id"] = pa.repeat(pa.scalar(features_snapshot_id, pa.int64()), n)
    texts = reason_texts(frame, names, facts or {}) if names is not None else [pa.nulls(n, pa.string())] * N_REASONS
    for k in range(N_REASONS):
        columns[f"reason_{k + 1}_text"] = texts[k]
    columns["at_risk"] = pa.array(flagged, pa.int32())
    columns["risk_rank"] = pa.array(rank, pa.int32())
    return pa.table(columns, schema=OUTPUT_SCHEMA)


def top_reasons(model: ChurnModel, x: np.ndarray, approx: bool = False) -> tuple[list[pa.Array], list[pa.Array]]:
    """The three most negative contributions to p_retained (the churn-risk drivers) of every row.

    Contributions are in calibrated log-odds; a slot is null when fewer than three are negative.
    """
    contribs = model.contributions(x, approx=approx)[:, :-1]
    k = min(N_REASONS, contribs.shape[1])
    # stable per-row ordering: most negative first, ties by feature order
    order = np.argsort(contribs, axis=1, kind="stable")[:, :k]
    picked = np.take_along_axis(contribs, order, axis=1)
    dictionary = pa.array(model.features, pa.string())
    names, values = [], []
    for j in range(N_REASONS):
        if j >= k:
            names.append(pa.nulls(len(x), pa.string()))
            values.append(pa.nulls(len(x), pa.float64()))
            continue
        negative = picked[:, j] < 0
        indices = pa.array(order[:, j].astype(np.int32), pa.int32(), mask=~negative)
        names.append(pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.string()))
        values.append(pa.array(picked[:, j], pa.float64(), mask=~negative))
    return names, values


def score_partition(model: ChurnModel, ds: date, settings: Settings, reasons: bool = True,
                    metadata: dict | None = None) -> dict:
    """Score partition dt=``ds`` of instances_w1 with a loaded (verified) model and publish its predictions.

    The features are read from the snapshot that wrote them, and its id is stored with every prediction:
    a later rebuild of the features makes the predictions detectably stale (:func:`stale_predictions`).
    """
    started = time.perf_counter()
    written = partition_snapshot(INSTANCES_W1, ds, settings)
    snapshot_id = written["snapshot_id"] if written else None
    frame = read_partition(INSTANCES_W1, ds, settings, snapshot_id=snapshot_id)
    config = load_feature_config(settings)
    check_feature_rows(frame, model, INSTANCES_W1.name, ds, config, settings.first_week_days)
    table = score_frame(model, frame, ds, reasons=reasons, features_snapshot_id=snapshot_id,
                        facts=reason_facts(metadata, config))
    published = write_partition(PREDICTIONS, ds, table, settings)
    result = {"dt": ds.isoformat(), "table": PREDICTIONS.name, "rows": published.rows, "model_version": model.version,
              "features_snapshot_id": snapshot_id, "seconds": round(time.perf_counter() - started, 2)}
    log.info("scored %s: %d rows with %s (features snapshot %s)", ds, published.rows, model.version, snapshot_id)
    return result


class FeatureRowsError(ValueError):
    """Rows of a feature partition that must not be scored; the message names table, column and rows."""


def check_feature_rows(frame: pd.DataFrame, model: ChurnModel, table: str, ds: date, config: FeatureConfig,
                       first_week_days: int) -> None:
    """Duplicate instances and impossible values never reach a published prediction.

    Each feature's valid values are its spec's (``FeatureSpec``: counts cannot be negative, the weekday is 1..7,
    the time to the first key action lies within the observed week); a value that is not finite is never valid
    but for NULL.
    """
    where = f"{table} dt={ds}"
    dupes = frame["instance_id"][frame["instance_id"].duplicated(keep=False)]
    if len(dupes):
        shown = ", ".join(sorted(set(dupes.astype(str)))[:5])
        raise FeatureRowsError(f"{where}.instance_id: {len(dupes)} rows share an instance_id "
                               f"({dupes.nunique()} instances), e.g. {shown}; rebuild the partition")
    if frame["instance_id"].isna().any():
        raise FeatureRowsError(f"{where}.instance_id: {int(frame['instance_id'].isna().sum())} rows without an id")
    for column in model.features:
        if column not in frame.columns or not pd.api.types.is_numeric_dtype(frame[column]):
            continue
        values = frame[column].astype(float)
        spec = config.spec(column)
        low, high = spec.bounds(first_week_days)
        bad = values.notna() & ~np.isfinite(values.fillna(0))
        if low is not None:
            bad |= values < low
        if high is not None:
            bad |= values > high
        if spec.integral:
            bad |= values.notna() & (values != values.round())
        if bad.any():
            examples = frame.loc[bad, ["instance_id", column]].head(5).to_dict("records")
            raise FeatureRowsError(f"{where}.{column}: {int(bad.sum())} rows out of range, e.g. {examples}")


def stale_predictions(days: list[date], settings: Settings) -> list[dict]:
    """Scored days whose features were rebuilt after scoring: the snapshot the predictions recorded is
    no longer the one that wrote the features (days whose writer snapshot expired cannot be judged)."""
    from churn.core.warehouse import list_partitions, load_table

    features = load_table(INSTANCES_W1, settings)
    scored = set(list_partitions(PREDICTIONS, settings))
    out = []
    for day in sorted(set(days) & scored):
        written = partition_snapshot(INSTANCES_W1, day, settings, tbl=features)
        if written is None:
            continue
        recorded = read_partition(PREDICTIONS, day, settings)["features_snapshot_id"].dropna().unique().tolist()
        if recorded != [written["snapshot_id"]]:
            out.append({"dt": day.isoformat(), "scored_snapshot": recorded[0] if recorded else None,
                        "features_snapshot": written["snapshot_id"]})
    return out
