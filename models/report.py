"""A self-contained HTML evaluation report (plots embedded as base64 PNG) stored next to each model version."""

from __future__ import annotations

import base64
import html
import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

HEADLINE = [("roc_auc", "ROC AUC"), ("pr_auc", "PR AUC (of retained)"), ("log_loss", "log-loss"), ("brier", "Brier"),
            ("ece", "expected calibration error"), ("threshold", "at-risk cut: flagged when p_retained <"),
            ("flagged_share", "share of trials flagged at_risk"),
            ("at_risk_precision", "precision of at_risk (flagged trials that churned)"),
            ("at_risk_recall", "recall of at_risk (churned trials that were flagged)"),
            ("at_risk_f1", "F1 of at_risk"), ("at_risk_f2", "F2 of at_risk"),
            ("precision", "precision of predicted retained (not flagged trials that converted)"),
            ("recall", "recall of retained (converted trials not flagged)"), ("accuracy", "accuracy"),
            ("top_decile_churn_lift", "top-decile churn lift"), ("rows", "rows"), ("label_rate", "retained rate")]


def build_report(metadata: dict, doc: dict, y: np.ndarray, p: np.ndarray, fitted: dict, valid: pd.DataFrame) -> str:
    """HTML for one model version; ``fitted`` maps candidate name -> model fitted on the training part."""
    m = doc["validation"]
    decision = doc["promotion"]
    candidate_p = {name: model.predict_proba(valid) for name, model in fitted.items()}
    images = [
        ("ROC curves (validation, out of time)", _roc(y, p, candidate_p)),
        ("Precision-recall (selected model)", _pr(y, p, m["threshold"])),
        ("Calibration curve", _calibration(doc["calibration_table"], m["ece"])),
        ("Churn lift by risk decile (1 = lowest p_retained)", _lift(doc["lift_by_decile"])),
        ("Confusion matrix at the threshold", _confusion(m["confusion_matrix"]["rows_true_cols_pred"])),
        ("Global feature importance", _importance(doc["importance"], metadata["kind"])),
    ]
    status = "champion" if decision["promoted"] else "challenger"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{_e(metadata['name'])} {_e(metadata['version'])}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "th{background:#f3f3f3}td.l,th.l{text-align:left}.box{padding:.8em;border-radius:6px;margin:1em 0}"
        ".champion{background:#e6f4e6}.challenger{background:#fdf0e0}img{max-width:100%}</style></head><body>",
        f"<h1>{_e(metadata['name'])} — version {_e(metadata['version'])}</h1>",
        f"<div class='box {status}'><b>{'Promoted to champion' if decision['promoted'] else 'Not promoted'}"
        f"</b>: {_e(decision['reason'])}</div>",
        "<h2>Headline metrics (validation cohorts, out of time)</h2>",
        _table(["metric", "value"], [[label, _fmt(m.get(key))] for key, label in HEADLINE]),
        f"<p>Selected candidate: <b>{_e(doc['selected'])}</b>; calibration "
        f"{'applied (Platt)' if doc['calibration']['applied'] else 'not applied'} (cross-fitted log-loss "
        f"{doc['calibration']['cross_fitted_log_loss']:.4f} vs uncalibrated "
        f"{doc['calibration']['uncalibrated_log_loss']:.4f}); threshold objective "
        f"<code>{_e(doc['threshold']['objective'])}</code>.</p>",
        "<h2>Candidates (fitted on the older cohorts, judged on the validation cohorts)</h2>",
        _table(["candidate", "kind", "log-loss", "ROC AUC", "PR AUC", "Brier", "ECE", "rounds", "params"],
               [[c["name"], c["kind"], _fmt(c["validation"]["log_loss"]), _fmt(c["validation"]["roc_auc"]),
                 _fmt(c["validation"]["pr_auc"]), _fmt(c["validation"]["brier"]), _fmt(c["validation"]["ece"]),
                 c["rounds"] or "", ", ".join(f"{k}={v}" for k, v in c["params"].items())]
                for c in doc["candidates"]]),
    ]
    if "comparison" in decision:
        comp = decision["comparison"]
        parts += [f"<h2>Against the champion {_e(decision['champion_version'])}</h2>",
                  f"<p>{comp['rows']} rows: {_e(comp['rows_used'])}</p>",
                  _table(["model", "ROC AUC", "log-loss"],
                         [["this version", _fmt(comp["new"]["roc_auc"]), _fmt(comp["new"]["log_loss"])],
                          ["champion", _fmt(comp["champion"]["roc_auc"]), _fmt(comp["champion"]["log_loss"])]])]
    parts += ["<h2>Classification report</h2>", f"<pre>{_e(m['classification_report_text'])}</pre>"]
    for title, png in images:
        parts.append(f"<h2>{_e(title)}</h2><img alt='{_e(title)}' src='data:image/png;base64,{png}'>")
    parts += [
        "<h2>Lift by decile</h2>",
        _table(["decile", "rows", "churn rate", "lift", "mean p_retained"],
               [[d["decile"], d["rows"], _fmt(d["churn_rate"]), _fmt(d["churn_lift"]), _fmt(d["mean_p_retained"])]
                for d in doc["lift_by_decile"]]),
        "<h2>Feature importance</h2>",
        _table(["feature", "mean |contribution| (SHAP, log-odds)",
                "gain" if metadata["kind"] == "xgboost" else "|coefficient|", "total gain"],
               [[r["feature"], _fmt(r["mean_abs_contribution"]), _fmt(r["gain"]), _fmt(r["total_gain"])]
                for r in doc["importance"]]),
        "<h2>Training data</h2>",
        _table(["item", "value"], [
            ["training window", f"{metadata['training_window']['start']} .. {metadata['training_window']['end_exclusive']}"
             f" (exclusive), {metadata['training_window']['partitions_found']} of "
             f"{metadata['training_window']['partitions_expected']} partitions"],
            ["cohorts (eval_start_date)", f"{metadata['eval_start_range']['min']} .. {metadata['eval_start_range']['max']}"],
            ["validation cohorts", f"{metadata['validation_eval_start_range']['min']} .. "
             f"{metadata['validation_eval_start_range']['max']}"],
            ["rows total / train / validation", " / ".join(str(metadata["rows"][k]) for k in ("total", "train", "validation"))],
            ["retained rate total / train / validation",
             " / ".join(_fmt(metadata["label_rate"][k]) for k in ("total", "train", "validation"))],
            ["data fingerprint (sha256)", metadata["data_fingerprint"]],
            ["code version", metadata.get("code_version") or "unknown"],
            ["libraries", ", ".join(f"{k} {v}" for k, v in metadata["libraries"].items())],
        ], left=True),
        "</body></html>",
    ]
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------- plots
def _figure(width=6.0, height=4.0):
    fig = Figure(figsize=(width, height), dpi=90)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode()


def _roc(y, p, candidate_p):
    fig = _figure()
    ax = fig.add_subplot()
    for name, cp in candidate_p.items():
        fpr, tpr, _ = roc_curve(y, cp)
        ax.plot(fpr, tpr, lw=1, alpha=0.7, label=name)
    fpr, tpr, _ = roc_curve(y, p)
    ax.plot(fpr, tpr, lw=2, color="black", label="selected (served calibration)")
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def _pr(y, p, threshold):
    fig = _figure()
    ax = fig.add_subplot()
    precision, recall, cuts = precision_recall_curve(y, p)
    ax.plot(recall, precision, color="black")
    at = np.searchsorted(cuts, threshold)
    if at < len(cuts):
        ax.scatter([recall[at]], [precision[at]], color="red", zorder=3, label=f"threshold {threshold:.3f}")
        ax.legend()
    ax.set_xlabel("recall (retained)")
    ax.set_ylabel("precision (retained)")
    return _png(fig)


def _calibration(table, ece):
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.plot([r["predicted"] for r in table], [r["observed"] for r in table], marker="o", color="black")
    ax.set_xlabel("mean predicted p_retained")
    ax.set_ylabel("observed retained rate")
    ax.set_title(f"ECE {ece:.4f}")
    return _png(fig)


def _lift(deciles):
    fig = _figure()
    ax = fig.add_subplot()
    ax.bar([d["decile"] for d in deciles], [d["churn_lift"] for d in deciles], color="#c0504d")
    ax.axhline(1, color="grey", ls=":")
    ax.set_xlabel("risk decile (1 = highest churn risk)")
    ax.set_ylabel("churn lift")
    return _png(fig)


def _confusion(cm):
    fig = _figure(4, 3.5)
    ax = fig.add_subplot()
    ax.imshow(np.asarray(cm), cmap="Blues")
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(cm[i][j]), ha="center", va="center")
    ax.set_xticks([0, 1], ["churned", "retained"])
    ax.set_yticks([0, 1], ["churned", "retained"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    return _png(fig)


def _importance(rows, kind):
    fig = _figure(9, max(3.0, 0.28 * len(rows) + 1))
    names = [r["feature"] for r in rows][::-1]
    second = "gain (XGBoost)" if kind == "xgboost" else "|coefficient| (standardised)"
    for k, (key, title) in enumerate([("mean_abs_contribution", "mean |SHAP| (log-odds)"), ("gain", second)]):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.barh(names, [r[key] for r in rows][::-1], color="#4f81bd")
        ax.set_title(title)
        ax.tick_params(axis="y", labelsize=7)
    return _png(fig)


# ----------------------------------------------------------------------------------------- html
def _e(value) -> str:
    return html.escape(str(value))


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _table(header, rows, left=False) -> str:
    cls = " class='l'"
    head = "".join(f"<th{cls if (left or i == 0) else ''}>{_e(h)}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f"<td{cls if (left or i == 0) else ''}>{_e(v)}</td>" for i, v in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
