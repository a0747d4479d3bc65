"""The monitoring dashboard: one self-contained page drawn from the two monitoring tables, rewritten by every
monitoring run and by `churn monitor report`."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from churn.cli import app
from churn.core.tables import MODEL_PERFORMANCE, PREDICTIONS
from churn.core.warehouse import read_partition
from churn.dev.synthetic import write_w1
from churn.jobs import monitor, score
from churn.jobs.monitor import DASHBOARD_PATH
from tests.models.test_monitor import OUTCOME_DT, SCORED_DT, _outcomes_for


def _monitored(local_copy, shuffle: bool):
    settings = local_copy.settings
    write_w1(settings, SCORED_DT, 400)
    score(settings, [SCORED_DT])
    _outcomes_for(settings, read_partition(PREDICTIONS, SCORED_DT, settings), shuffle=shuffle,
                  rng=np.random.default_rng(5))
    return monitor(settings, performance_days=[OUTCOME_DT], drift_days=[SCORED_DT])


def test_a_monitoring_run_rewrites_a_self_contained_dashboard_with_intervals_and_alerts(local_copy):
    result = _monitored(local_copy, shuffle=True)  # a model that stopped ranking: an AUC alert
    assert result.report == f"{local_copy.settings.warehouse}/{DASHBOARD_PATH}"
    page = Path(result.report).read_text()
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", page)  # nothing loaded from elsewhere
    assert page.count("data:image/png;base64,") == 6  # AUC, log-likelihood, Brier, observed/predicted, counts, drift
    for heading in ("ROC AUC by outcome day", "Average log-likelihood", "Brier score",
                    "Observed vs predicted conversion rate", "Drift: PSI of each feature"):
        assert heading in page
    row = read_partition(MODEL_PERFORMANCE, OUTCOME_DT, local_copy.settings).iloc[0]
    shown = f"{row['roc_auc']:.3f} [{row['roc_auc_low']:.3f}, {row['roc_auc_high']:.3f}]"
    assert shown in page  # the day's AUC is shown with its interval
    log_likelihood = -row["log_loss"]
    assert f"{log_likelihood:.3f} [{log_likelihood - 1.96 * row['log_loss_se']:.3f}," in page
    assert row["alert"] and "1 alert(s)" in page and "realised AUC" in page
    assert 0 < row["observed_rate"] < 1 and row["brier_se"] > 0


def test_monitor_report_command_writes_the_window_it_is_asked_for(local_copy, tmp_path):
    _monitored(local_copy, shuffle=False)
    out = tmp_path / "dashboard.html"
    result = CliRunner().invoke(app, ["monitor", "report", "--days", "30", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["end"] == OUTCOME_DT.isoformat() and summary["alerts"] == 0
    assert summary["performance_rows"] == 1 and summary["drift_rows"] > 10
    assert "No alert" in out.read_text() and Path(summary["report"]).read_text() == out.read_text()
    # a window that holds no monitored day draws the page and says there is nothing yet
    early = CliRunner().invoke(app, ["monitor", "report", "--end", SCORED_DT.isoformat(), "--days", "1",
                                     "--out", str(out)])
    assert early.exit_code == 0, early.output
    assert "No scored cohort has outcomes yet" in out.read_text()
    bad = CliRunner().invoke(app, ["monitor", "report", "--end", "2026-13-01"])
    assert bad.exit_code == 2 and "2026-13-01" in bad.stderr


def test_monitor_report_on_a_warehouse_never_monitored_says_what_to_run(empty_local):
    result = CliRunner().invoke(app, ["monitor", "report"])
    assert result.exit_code == 0
    assert "nothing monitored yet" in result.stderr


def test_monitor_report_out_never_replaces_warehouse_or_raw_data(local_copy, tmp_path):
    _monitored(local_copy, shuffle=False)
    settings = local_copy.settings
    raw = next(Path(settings.warehouse).glob("features/instances_modeling/data/*/*.parquet"))
    before = raw.read_bytes()
    for target, says in ((raw, "holds the warehouse's data"), (tmp_path, "is a folder: name a file")):
        result = CliRunner().invoke(app, ["monitor", "report", "--out", str(target)])
        assert result.exit_code == 2 and says in result.stderr, result.output
    assert raw.read_bytes() == before
    inside = Path(settings.warehouse, "reports", "mine", "page.html")  # the warehouse's reports folder is allowed
    assert CliRunner().invoke(app, ["monitor", "report", "--out", str(inside)]).exit_code == 0 and inside.exists()


def test_rates_are_drawn_on_a_zoomed_axis_and_every_panel_shares_the_window():
    from churn.models import dashboard

    frame = pd.DataFrame({"observed_rate_low": [0.15, 0.18], "observed_rate_high": [0.25, 0.27],
                          "mean_p_retained": [0.2, 0.21]})
    low, high = dashboard._zoomed(frame, list(frame.columns))
    assert 0.1 < low < 0.15 and 0.27 < high < 0.35  # not 0..1: a rate near 0.2 must not look flat

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    one_day = pd.DataFrame({"dt": [date(2026, 3, 10)]})
    dashboard._day_axis(ax, one_day, (date(2026, 3, 1), date(2026, 3, 31)))
    left, right = ax.get_xlim()
    assert round(right - left) == 32  # the window's 31 days and a day of margin, whatever this panel holds


def test_a_dark_drift_cell_that_did_not_alert_is_explained():
    from churn.models.dashboard import build_dashboard

    drift = pd.DataFrame({"dt": [date(2026, 3, 1), date(2026, 3, 2)], "feature": ["mobile_events", "sessions"],
                          "model_version": "v1", "current_rows": [12, 300], "reference_rows": 900,
                          "psi": [0.9, 0.05], "mean": 1.0, "reference_mean": 1.0, "null_rate": 0.0,
                          "reference_null_rate": 0.0, "alert": [None, None], "psi_p_value": [0.4, 0.9]})
    page = build_dashboard(pd.DataFrame(), drift, title="t", psi_alert=0.25, auc_floor=0.6, generated="now")
    assert "Dark cells without an alert" in page and "mobile_events" in page.split("Dark cells without an alert")[1]
    assert "sessions" not in page.split("Dark cells without an alert")[1].split("</table>")[0]
