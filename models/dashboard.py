"""The monitoring dashboard: one self-contained HTML page (plots embedded as PNG) of realised performance
and drift by day and model version, with the alerts.

This is the daily log-likelihood dashboard of the monitoring seed (shared/seeds/000), for this system:
every daily value is drawn with its 95% interval, because a day holds few outcomes and most of a daily
wiggle is noise. Pure: it gets the two monitoring tables as frames and returns HTML.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from churn.models.report import _e, _figure, _fmt, _png, _table

Z = 1.96
COLORS = ["#1f5fa8", "#c0504d", "#4e9a06", "#8064a2", "#f79646", "#4bacc6"]


def build_dashboard(performance: pd.DataFrame, drift: pd.DataFrame, *, title: str, psi_alert: float,
                    auc_floor: float, generated: str) -> str:
    """HTML of the dashboard. ``performance`` and ``drift`` are rows of model_performance and feature_drift
    with their ``dt``; either may be empty (a new deployment)."""
    performance = _with_intervals(performance)
    scored = performance[performance["scored_rows"] > 0] if len(performance) else performance
    days = sorted(set(performance.get("dt", [])) | set(drift.get("dt", [])))
    alerts = _alerts(performance, drift)
    span = f"{days[0]} … {days[-1]}" if days else "no day monitored yet"
    x_range = (days[0], days[-1]) if days else None  # one x-range for every panel: the same day sits at the same x
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{_e(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:right}th{background:#f3f3f3}td.l,th.l{text-align:left}.box{padding:.8em;border-radius:6px;"
        "margin:1em 0}.ok{background:#e6f4e6}.alert{background:#fbe3e3}img{max-width:100%}"
        ".note{color:#555;font-size:13px}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p class='note'>{_e(span)} · {len(days)} days · generated {_e(generated)}. Shaded bands and error bars "
        "are 95% intervals; a day whose interval covers the usual level is not evidence of a change.</p>",
        (f"<div class='box alert'><b>{len(alerts)} alert(s)</b> — latest: {_e(alerts[-1][0])} {_e(alerts[-1][2])}"
         "</div>" if alerts else "<div class='box ok'><b>No alert</b> in this window.</div>"),
    ]
    if len(scored):
        parts += [
            "<h2>Realised ranking: ROC AUC by outcome day and model version</h2>",
            _img("ROC AUC", _line_with_band(scored, "roc_auc", "roc_auc_low", "roc_auc_high", "ROC AUC",
                                            reference="validation_roc_auc", floor=auc_floor, x_range=x_range)),
            "<h2>Average log-likelihood per trial (higher is better)</h2>",
            _img("average log-likelihood", _line_with_band(scored, "avg_log_likelihood", "avg_log_likelihood_low",
                                                           "avg_log_likelihood_high", "mean log p(outcome)",
                                                           x_range=x_range)),
            "<h2>Brier score (lower is better)</h2>",
            _img("Brier", _line_with_band(scored, "brier", "brier_low", "brier_high", "Brier score", x_range=x_range)),
            "<h2>Observed vs predicted conversion rate of the scored trials (axis zoomed to the rates)</h2>",
            _img("observed vs predicted", _observed_vs_predicted(scored, x_range)),
            "<h2>Outcomes per day</h2>",
            _img("outcomes per day", _counts(performance, x_range)),
        ]
    else:
        parts.append("<p>No scored cohort has outcomes yet: realised performance starts 23 days after the "
                     "first scored day (a trial's outcome is known 30 days after it starts).</p>")
    if len(drift):
        parts += [f"<h2>Drift: PSI of each feature by scored day (× = alert: PSI above {psi_alert} and not chance "
                  "at the day's sample size)</h2>",
                  _img("drift heat map", _heatmap(drift, psi_alert))]
        quiet = drift[(drift["psi"] > psi_alert) & drift["alert"].isna()].sort_values(["dt", "feature"])
        if len(quiet):
            parts += ["<h2>Dark cells without an alert</h2>",
                      f"<p class='note'>These PSIs are above {psi_alert}, but a shift that large is what chance gives "
                      "at the day's sample size (chi-square p-value against the training rows above "
                      "CHURN_MONITORING_DRIFT_P_VALUE), so they did not alert: a few trials in a bin move the PSI a "
                      "lot.</p>",
                      _table(["scored day", "feature", "PSI", "p-value", "rows"],
                             [[str(r.dt), r.feature, _fmt(_num(r.psi)), _fmt(_num(getattr(r, "psi_p_value", None))),
                               int(r.current_rows)] for r in quiet.tail(40).itertuples()], left=True)]
    parts += ["<h2>Alerts</h2>",
              _table(["day", "where", "alert"], [[str(d), w, a] for d, w, a in alerts], left=True) if alerts
              else "<p>none</p>"]
    if len(performance):
        recent = performance.sort_values(["dt", "model_version"], ascending=[False, True]).head(60)
        parts += ["<h2>By day and model version (latest 60 rows)</h2>", _table(
            ["outcome day", "model version", "outcomes", "scored", "ROC AUC [95%]", "avg log-lik [95%]",
             "Brier [95%]", "observed rate [95%]", "predicted rate", "alert"],
            [[str(r.dt), r.model_version or "(not scored)", int(r.labelled_rows), int(r.scored_rows),
              _ci(r.roc_auc, r.roc_auc_low, r.roc_auc_high), _ci(r.avg_log_likelihood, r.avg_log_likelihood_low,
                                                                 r.avg_log_likelihood_high),
              _ci(r.brier, r.brier_low, r.brier_high), _ci(r.observed_rate, r.observed_rate_low, r.observed_rate_high),
              _fmt(_num(r.mean_p_retained)), r.alert or ""] for r in recent.itertuples()])]
    parts.append("</body></html>")
    return "\n".join(parts)


def _with_intervals(performance: pd.DataFrame) -> pd.DataFrame:
    """Adds average log-likelihood and the 95% bounds the plots draw (older rows lack the standard errors)."""
    frame = performance.copy()
    if frame.empty:
        return frame
    for column in ("observed_rate", "log_loss_se", "brier_se"):
        if column not in frame:
            frame[column] = np.nan
    frame["avg_log_likelihood"] = -frame["log_loss"]
    frame["avg_log_likelihood_low"] = frame["avg_log_likelihood"] - Z * frame["log_loss_se"]
    frame["avg_log_likelihood_high"] = frame["avg_log_likelihood"] + Z * frame["log_loss_se"]
    frame["brier_low"] = frame["brier"] - Z * frame["brier_se"]
    frame["brier_high"] = frame["brier"] + Z * frame["brier_se"]
    low, high = _wilson(frame["observed_rate"], frame["scored_rows"])
    frame["observed_rate_low"], frame["observed_rate_high"] = low, high
    return frame


def _wilson(rate: pd.Series, n: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    from churn.models.evaluate import wilson_interval

    return wilson_interval(rate.to_numpy(dtype=float), n.to_numpy(dtype=float), Z)


def _alerts(performance: pd.DataFrame, drift: pd.DataFrame) -> list[tuple[date, str, str]]:
    found = []
    if len(performance):
        for r in performance[performance["alert"].notna()].itertuples():
            found.append((r.dt, f"performance of {r.model_version}", r.alert))
    if len(drift):
        for r in drift[drift["alert"].notna()].itertuples():
            found.append((r.dt, f"drift of {r.feature}", r.alert))
    return sorted(found, key=lambda a: (a[0], a[1]))


# ---------------------------------------------------------------------------------------- plots
def _by_version(frame: pd.DataFrame):
    for k, (version, part) in enumerate(frame.sort_values("dt").groupby("model_version", sort=True)):
        yield version, part, COLORS[k % len(COLORS)]


def _line_with_band(frame, column, low, high, ylabel, reference=None, floor=None, x_range=None):
    fig = _figure(11, 3.6)
    ax = fig.add_subplot()
    for version, part, color in _by_version(frame):
        x = pd.to_datetime(part["dt"]).to_numpy()
        value, lower, upper = _values(part, column), _values(part, low), _values(part, high)
        ax.fill_between(x, lower, upper, color=color, alpha=0.15, lw=0)
        ax.errorbar(x, value, yerr=np.vstack([value - lower, upper - value]), fmt="o-", ms=3, lw=1.1, elinewidth=0.6,
                    color=color, label=f"{version} (daily, 95%)")
        if reference and part[reference].notna().any():
            ax.hlines(part[reference].dropna().iloc[-1], x.min() - np.timedelta64(12, "h"),
                      x.max() + np.timedelta64(12, "h"), colors=color, linestyles="--", lw=1,
                      label=f"{version} validation")
    if floor is not None:
        ax.axhline(floor, color="#b00", ls=":", lw=1, label=f"promotion floor {floor}")
    _day_axis(ax, frame, x_range)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.autofmt_xdate()
    return _png(fig)


def _day_axis(ax, frame: pd.DataFrame, x_range=None) -> None:
    """Days on x, with a day of margin (a single day is not stretched over years); ``x_range`` (first, last) is
    the dashboard's whole window, so that every panel puts a day at the same place."""
    days = pd.to_datetime(pd.Series(list(x_range) if x_range else frame["dt"]))
    ax.set_xlim(days.min() - pd.Timedelta(days=1), days.max() + pd.Timedelta(days=1))


def _values(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(dtype=float)


def _observed_vs_predicted(frame, x_range=None):
    fig = _figure(11, 3.6)
    ax = fig.add_subplot()
    for version, part, color in _by_version(frame):
        x = pd.to_datetime(part["dt"]).to_numpy()
        rate, low, high = (_values(part, c) for c in ("observed_rate", "observed_rate_low", "observed_rate_high"))
        ax.errorbar(x, rate, yerr=np.vstack([rate - low, high - rate]), fmt="o", ms=3, lw=0.8, color=color,
                    label=f"{version} observed (95%)")
        ax.plot(x, _values(part, "mean_p_retained"), lw=1.5, marker="_", ms=12, color=color, alpha=0.8,
                label=f"{version} predicted (mean p)")
    _day_axis(ax, frame, x_range)
    ax.set_ylabel("converted (retained) rate")
    ax.set_ylim(*_zoomed(frame, ["observed_rate_low", "observed_rate_high", "mean_p_retained"]))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.autofmt_xdate()
    return _png(fig)


def _zoomed(frame: pd.DataFrame, columns: list[str]) -> tuple[float, float]:
    """A rate axis around the data (rates near 0.2 drawn on 0..1 look flat), within 0..1."""
    values = np.concatenate([_values(frame, c) for c in columns])
    values = values[np.isfinite(values)]
    if not len(values):
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    pad = max(0.02, 0.1 * (high - low))
    return max(0.0, low - pad), min(1.0, high + pad)


def _counts(frame, x_range=None):
    fig = _figure(11, 2.6)
    ax = fig.add_subplot()
    daily = frame.groupby("dt").agg(labelled=("labelled_rows", "max"), scored=("scored_rows", "sum")).sort_index()
    x = pd.to_datetime(daily.index).to_numpy()
    ax.bar(x, _values(daily, "labelled"), color="#ccc", label="outcomes known")
    ax.bar(x, _values(daily, "scored"), color="#1f5fa8", width=0.5, label="of which scored")
    _day_axis(ax, frame, x_range)
    ax.set_ylabel("trials")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return _png(fig)


def _heatmap(drift, psi_alert):
    from matplotlib.colors import LinearSegmentedColormap

    table = drift.pivot_table(index="feature", columns="dt", values="psi", aggfunc="max")
    order = table.max(axis=1).sort_values(ascending=False).index  # most drifting features on top
    table = table.loc[order]
    fig = _figure(11, max(3.0, 0.22 * len(table) + 1.5))
    ax = fig.add_subplot()
    cmap = LinearSegmentedColormap.from_list("psi", ["#f7fbff", "#fdd49e", "#d7301f"])
    image = ax.imshow(table.to_numpy(dtype=float), aspect="auto", cmap=cmap, vmin=0, vmax=max(2 * psi_alert, 1e-9),
                      interpolation="nearest")
    alerted = drift.assign(alerted=drift["alert"].notna().astype(float)).pivot_table(
        index="feature", columns="dt", values="alerted", aggfunc="max").reindex(index=table.index, columns=table.columns)
    alert = np.argwhere(alerted.fillna(0).to_numpy() > 0)  # the rule's alerts (PSI and p-value), not PSI alone
    ax.scatter(alert[:, 1], alert[:, 0], marker="x", s=14, color="black", lw=0.9, label="alert")
    ax.set_yticks(range(len(table)), table.index, fontsize=7)
    step = max(1, len(table.columns) // 15)
    ax.set_xticks(range(0, len(table.columns), step), [str(d) for d in table.columns[::step]], rotation=45,
                  ha="right", fontsize=7)
    fig.colorbar(image, ax=ax, label="PSI vs training profile")
    return _png(fig)  # the heading says what × means: a legend would cover the newest day


# ----------------------------------------------------------------------------------------- html
def _img(title: str, png: str) -> str:
    return f"<img alt='{_e(title)}' src='data:image/png;base64,{png}'>"


def _num(value) -> float | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


def _ci(value, low, high) -> str:
    value, low, high = _num(value), _num(low), _num(high)
    if value is None:
        return ""
    return f"{value:.3f}" + (f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else "")
