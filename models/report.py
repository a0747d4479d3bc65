"""A self-contained HTML evaluation report (plots embedded as base64 PNG) stored next to each model version."""

from __future__ import annotations

import base64
import html
import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve

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
    from churn.models.evaluate import auc_interval, log_loss_interval
    from churn.models.promotion import PROMOTION_RULE

    m = doc["validation"]
    decision = doc["promotion"]
    candidate_p = {name: model.predict_proba(valid) for name, model in fitted.items()}
    n_pos, n_neg = int(np.sum(y)), int(len(y) - np.sum(y))
    auc_low, auc_high = auc_interval(m["roc_auc"], n_pos, n_neg)
    loss_low, loss_high = log_loss_interval(y, p)
    images = [
        ("ROC curves (validation, out of time)", _roc(y, p, candidate_p)),
        ("Validation AUC by cohort week, with 95% intervals", _weekly_auc(y, p, valid["eval_start_date"])),
        ("Who is flagged at_risk at each cut", _threshold_curve(y, p, m["threshold"])),
        ("Precision-recall of at_risk (selected model)", _pr(y, p, m["threshold"])),
        ("Calibration curve", _calibration(doc["calibration_table"], m["ece"])),
        ("Churn lift by risk decile (1 = highest churn risk)", _lift(doc["lift_by_decile"])),
        ("Confusion matrix at the cut", _confusion(m["confusion_matrix"]["rows_true_cols_pred"])),
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
        f"<p>ROC AUC {m['roc_auc']:.4f} (95% interval {auc_low:.4f}–{auc_high:.4f}, {n_pos} retained and {n_neg} "
        f"churned trials); log-loss {m['log_loss']:.4f} (95% interval {loss_low:.4f}–{loss_high:.4f}). "
        "Differences smaller than these intervals are noise.</p>",
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
        "<h2>Tuning (time-ordered folds of the older cohorts; lowest mean log-loss wins)</h2>",
        _tuning(doc["candidates"]),
        "<h2>Promotion rule</h2>", f"<p>{_e(PROMOTION_RULE)}</p>",
    ]
    if "comparison" in decision:
        comp = decision["comparison"]
        delta = comp.get("paired_bootstrap")
        parts += [f"<h2>Against the champion {_e(decision['champion_version'])}</h2>",
                  f"<p>{comp['rows']} rows: {_e(comp['rows_used'])}. Verdict: <b>{_e(decision.get('verdict', ''))}"
                  "</b>.</p>",
                  _table(["model", "ROC AUC", "log-loss"],
                         [["this version", _fmt(comp["new"]["roc_auc"]), _fmt(comp["new"]["log_loss"])],
                          ["champion", _fmt(comp["champion"]["roc_auc"]), _fmt(comp["champion"]["log_loss"])]])]
        if delta:
            parts.append(_table(
                [f"difference (this − champion), paired bootstrap of {delta['rounds']} resamples", "estimate",
                 "95% interval", "favours"],
                [["ROC AUC", f"{delta['delta_auc']:+.4f}", f"{delta['delta_auc_low']:+.4f} … {delta['delta_auc_high']:+.4f}",
                  _favours(delta["delta_auc_low"], delta["delta_auc_high"], higher_is_better=True)],
                 ["log-loss", f"{delta['delta_log_loss']:+.4f}",
                  f"{delta['delta_log_loss_low']:+.4f} … {delta['delta_log_loss_high']:+.4f}",
                  _favours(delta["delta_log_loss_low"], delta["delta_log_loss_high"], higher_is_better=False)]]))
    parts += ["<h2>Classification report (at the cut)</h2>", f"<pre>{_e(m['classification_report_text'])}</pre>"]
    for title, png in images:
        parts.append(f"<h2>{_e(title)}</h2><img alt='{_e(title)}' src='data:image/png;base64,{png}'>")
    parts += [
        "<h2>Lift by decile</h2>",
        _table(["decile", "rows", "churn rate", "lift", "mean p_retained"],
               [[d["decile"], d["rows"], _fmt(d["churn_rate"]), _fmt(d["churn_lift"]), _fmt(d["mean_p_retained"])]
                for d in doc["lift_by_decile"]]),
        "<h2>Feature importance</h2>",
        _importance_table(doc["importance"], metadata["kind"]),
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
        ax.plot(fpr, tpr, lw=1, alpha=0.7, label=f"{name} (AUC {roc_auc_score(y, cp):.3f})")
    fpr, tpr, _ = roc_curve(y, p)
    ax.plot(fpr, tpr, lw=2, color="black", label=f"selected, as served (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def _pr(y, p, threshold):
    """Precision-recall of the decision people act on: at_risk (churned is the positive class, 1 - p its score)."""
    fig = _figure()
    ax = fig.add_subplot()
    churned, risk = 1 - np.asarray(y).astype(int), 1 - np.asarray(p)
    precision, recall, cuts = precision_recall_curve(churned, risk)
    ax.plot(recall, precision, color="black")
    ax.axhline(churned.mean(), color="grey", ls=":", label=f"base rate {churned.mean():.3f}")
    flagged = risk > 1 - threshold
    if flagged.any():
        ax.scatter([churned[flagged].sum() / max(churned.sum(), 1)], [churned[flagged].mean()], color="red", zorder=3,
                   label=f"the cut (p_retained < {threshold:.3f})")
    ax.legend(fontsize=8)
    ax.set_xlabel("recall of at_risk (churned trials flagged)")
    ax.set_ylabel("precision of at_risk (flagged trials that churned)")
    return _png(fig)


def _threshold_curve(y, p, threshold):
    """Share flagged, precision and recall of at_risk as the cut moves: what a different cut would do."""
    fig = _figure(7, 4)
    ax = fig.add_subplot()
    churned = 1 - np.asarray(y).astype(int)
    cuts = np.linspace(0.02, 0.98, 97)
    flagged = np.asarray(p)[None, :] < cuts[:, None]
    share = flagged.mean(axis=1)
    hits = (flagged & (churned[None, :] == 1)).sum(axis=1)
    precision = np.where(flagged.sum(axis=1) > 0, hits / np.maximum(flagged.sum(axis=1), 1), np.nan)
    recall = hits / max(churned.sum(), 1)
    ax.plot(cuts, share, color="#555", label="share flagged at_risk")
    ax.plot(cuts, precision, color="#c0504d", label="precision of at_risk")
    ax.plot(cuts, recall, color="#1f5fa8", label="recall of at_risk")
    ax.axvline(threshold, color="black", ls="--", lw=1, label=f"chosen cut {threshold:.3f}")
    ax.set_xlabel("cut: flagged at_risk when p_retained < cut")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def _weekly_auc(y, p, eval_start_dates):
    """AUC of each validation week of cohorts: a model that is only good on average shows here."""
    from churn.models.evaluate import auc_interval

    frame = pd.DataFrame({"y": np.asarray(y).astype(int), "p": np.asarray(p),
                          "week": pd.to_datetime(pd.Series(eval_start_dates)).dt.to_period("W-SUN").dt.start_time})
    rows = []
    for week, part in frame.groupby("week"):
        if part["y"].nunique() == 2:
            auc = roc_auc_score(part["y"], part["p"])
            low, high = auc_interval(auc, int(part["y"].sum()), int(len(part) - part["y"].sum()))
            rows.append((week, auc, low, high, len(part)))
    fig = _figure(7, 3.4)
    ax = fig.add_subplot()
    if rows:
        weeks, aucs, lows, highs, counts = map(np.asarray, zip(*rows, strict=True))
        ax.errorbar(np.arange(len(weeks)), aucs, yerr=np.vstack([aucs - lows, highs - aucs]), fmt="o", color="black")
        ax.set_xticks(np.arange(len(weeks)), [f"{pd.Timestamp(w):%Y-%m-%d}\n{n} trials" for w, n in
                                              zip(weeks, counts, strict=True)], fontsize=7)
    ax.axhline(roc_auc_score(y, p) if len(np.unique(y)) == 2 else 0.5, color="grey", ls=":", label="all weeks")
    ax.set_ylabel("ROC AUC")
    ax.set_xlabel("week of cohort start")
    ax.legend(fontsize=8)
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
    """Counts and the share of each actual class, in text that stays readable on dark and light cells."""
    cm = np.asarray(cm)  # rows: actual churned, retained; columns: predicted 0 (flagged at_risk), 1 (not flagged)
    fig = _figure(5, 3.8)
    ax = fig.add_subplot()
    shares = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(2):
        for j in range(2):
            ax.text(j, i, f"{cm[i][j]:,}\n{shares[i][j]:.0%} of row", ha="center", va="center", fontsize=11,
                    color="white" if shares[i][j] > 0.55 else "black")
    ax.set_xticks([0, 1], ["flagged at_risk", "not flagged"])
    ax.set_yticks([0, 1], ["churned", "retained"])
    ax.set_xlabel("decision")
    ax.set_ylabel("what happened")
    return _png(fig)


def _importance(rows, kind):
    fig = _figure(9, max(3.0, 0.28 * len(rows) + 1))
    names = [r["feature"] for r in rows][::-1]
    first, second = IMPORTANCE_LABELS[kind][:2]
    for k, (key, title) in enumerate([("mean_abs_contribution", first), ("gain", second)]):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.barh(names, [r[key] for r in rows][::-1], color="#4f81bd")
        ax.set_title(title)
        ax.tick_params(axis="y", labelsize=7)
    return _png(fig)


IMPORTANCE_LABELS = {  # what each number is, per model kind: a linear model has no SHAP values and no gain
    "xgboost": ("mean |SHAP value| (log-odds)", "gain per split (XGBoost)", "total gain (XGBoost)"),
    "logistic": ("mean |coefficient × (value − mean)| (log-odds)", "|coefficient| (per standard deviation)", None),
}


def _importance_table(rows, kind) -> str:
    first, second, third = IMPORTANCE_LABELS[kind]
    header = ["feature", first, second] + ([third] if third else [])
    return _table(header, [[r["feature"], _fmt(r["mean_abs_contribution"]), _fmt(r["gain"])]
                           + ([_fmt(r["total_gain"])] if third else []) for r in rows])


def _tuning(candidates) -> str:
    rows = []
    for c in candidates:
        for result in c.get("tuning") or []:
            folds = ", ".join(f"{v:.4f}" for v in result["fold_log_loss"])
            params = ", ".join(f"{k}={v}" for k, v in result["params"].items())
            rows.append([c["name"], params, _fmt(result["mean_log_loss"]), folds, result.get("rounds", "")])
    if not rows:
        return "<p>no candidate was tuned</p>"
    best = {c["name"]: min(r[2] for r in rows if r[0] == c["name"]) for c in candidates if c.get("tuning")}
    marked = [[*r[:2], f"{r[2]} ✓" if r[2] == best[r[0]] else r[2], *r[3:]] for r in rows]
    return _table(["candidate", "configuration", "mean fold log-loss", "per fold", "rounds"], marked)


def _favours(low: float, high: float, higher_is_better: bool) -> str:
    if low > 0:
        return "this version" if higher_is_better else "the champion"
    if high < 0:
        return "the champion" if higher_is_better else "this version"
    return "neither (interval covers 0)"


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
