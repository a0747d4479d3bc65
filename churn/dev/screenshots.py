"""Screenshots of what a person sees, for the docs: the Airflow UI after `make demo`, the monitoring
dashboard and the champion's report, taken with headless Chromium (``apt-get install chromium``).

    python -m churn.dev.screenshots --out docs/images

Starts Airflow on the demo's metadata DB (login disabled for these processes alone through
SimpleAuthManager's all-admins mode), shows an alert the way an operator meets one (the events of one
type stop arriving on the latest day; churn_monitoring is run for that day and goes red), shoots, and
stops it. It changes the demo's warehouse: run it after `make demo`, not on real data.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import typer

from churn.core.settings import Settings

WINDOW = "1500,1000"
WIDE = "2300,1000"  # run lists: every column (the run page, not the list, shows the Partition Key)


def shoot(url: str, target: Path, window: str = WINDOW, wait_ms: int = 15000) -> Path:
    """One PNG of ``url`` after ``wait_ms`` of (virtual) time, so a single-page app has rendered."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise typer.BadParameter("headless Chromium is needed: apt-get install chromium")
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={window}", f"--virtual-time-budget={wait_ms}", f"--screenshot={target}", url],
                   check=True, capture_output=True, timeout=120)
    return target


def stop_event_type(settings: Settings, feature: str) -> str:
    """The injected change: the events behind ``feature`` stop arriving on the latest scored day, so the
    day's features are republished with it at 0 (what a rebuild after an upstream outage would publish)."""
    from churn.core.tables import INSTANCES_W1, PREDICTIONS
    from churn.core.warehouse import list_partitions, read_partition, write_partition

    day = list_partitions(PREDICTIONS, settings)[-1]
    frame = read_partition(INSTANCES_W1, day, settings).drop(columns="dt")
    write_partition(INSTANCES_W1, day, frame.assign(**{feature: 0}), settings)
    return day.isoformat()


def main(out: Path = typer.Option(Path("docs/images"), help="folder for the PNG files"),
         inject: str = typer.Option("issues_completed", help="count feature whose events stop on the latest day, "
                                    "then churn_monitoring is run for it (an alerting run to show); '' for none")) -> None:
    import time

    from churn.dev.airflow_local import LocalAirflow, free_port
    from churn.jobs.monitor import dashboard_path
    from churn.models.registry import Registry

    settings = Settings()
    airflow = LocalAirflow(port=free_port(8080), extra_env={"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"})
    with airflow.running():
        token = airflow.token()
        alerted = None
        if inject:
            day = stop_event_type(settings, inject)
            airflow.api("PATCH", "/dags/churn_monitoring", {"is_paused": False}, token=token)
            run_id = f"manual__{inject}_stops_{day}"
            airflow.api("POST", "/dags/churn_monitoring/dagRuns",
                        {"dag_run_id": run_id, "logical_date": None, "conf": {"dts": [day]}}, token=token)
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                alerted = airflow.api("GET", f"/dags/churn_monitoring/dagRuns/{run_id}", token=token)
                if alerted["state"] in ("success", "failed"):
                    break
                time.sleep(3)
            airflow.api("PATCH", "/dags/churn_monitoring", {"is_paused": True}, token=token)
            print(f"churn_monitoring {run_id}: {alerted['state']}")
        runs = {dag: airflow.api("GET", f"/dags/{dag}/dagRuns?limit=200&order_by=-run_after", token=token)["dag_runs"]
                for dag in ("churn_scoring", "churn_monitoring")}
        scoring = next(r for r in runs["churn_scoring"] if r["state"] == "success")
        alerted = alerted or runs["churn_monitoring"][0]
        shots = {
            "airflow_dags.png": "/dags",
            "airflow_scoring_run.png": f"/dags/churn_scoring/runs/{scoring['dag_run_id']}",
            "airflow_monitoring_runs.png": "/dags/churn_monitoring/runs",
            "airflow_monitoring_alert.png": f"/dags/churn_monitoring/runs/{alerted['dag_run_id']}/tasks/check_alerts",
        }
        for name, path in shots.items():
            print(shoot(f"{airflow.url}{path}", out / name, window=WIDE if path.endswith("/runs") else WINDOW))
    champion = Registry(settings).alias("champion")["version"]
    report = Path(Registry(settings).artifact_path(champion, "report.html"))
    print(shoot(f"file://{Path(dashboard_path(settings)).resolve()}", out / "monitoring_dashboard.png",
                window="1250,3000", wait_ms=1000))
    print(shoot(f"file://{report.resolve()}", out / "model_report.png", window="1200,3000", wait_ms=1000))


if __name__ == "__main__":
    typer.run(main)
