"""Screenshots of what a person sees, for the docs: the Airflow UI after `make demo`, the monitoring
dashboard and the champion's report, taken with headless Chromium (``apt-get install chromium``).

    python -m churn.tools.screenshots --out docs/images

Starts only an api-server on the demo's metadata DB (read-only use; login disabled for this process
alone through SimpleAuthManager's all-admins mode), shoots, and stops it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import typer

from churn.core.settings import Settings

WINDOW = "1500,1000"


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


def main(out: Path = typer.Option(Path("docs/images"), help="folder for the PNG files")) -> None:
    from churn.jobs.monitor import DASHBOARD_PATH
    from churn.tools.airflow_local import LocalAirflow, free_port
    from models.registry import Registry

    settings = Settings()
    airflow = LocalAirflow(port=free_port(8080), extra_env={"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"})
    with airflow.running(components=("api-server",)):
        token = airflow.token()
        runs = {dag: airflow.api("GET", f"/dags/{dag}/dagRuns?limit=200&order_by=-run_after", token=token)["dag_runs"]
                for dag in ("churn_scoring", "churn_monitoring")}
        scoring = next(r for r in runs["churn_scoring"] if r["state"] == "success")
        alerted = next((r for r in runs["churn_monitoring"] if r["state"] == "failed"), runs["churn_monitoring"][0])
        shots = {
            "airflow_dags.png": "/dags",
            "airflow_scoring_grid.png": "/dags/churn_scoring",
            "airflow_scoring_run.png": f"/dags/churn_scoring/runs/{scoring['dag_run_id']}",
            "airflow_monitoring_alert.png": f"/dags/churn_monitoring/runs/{alerted['dag_run_id']}/tasks/check_alerts",
        }
        for name, path in shots.items():
            print(shoot(f"{airflow.url}{path}", out / name))
    champion = Registry(settings).alias("champion")["version"]
    report = Path(Registry(settings).artifact_path(champion, "report.html"))
    print(shoot(f"file://{Path(settings.warehouse).resolve() / DASHBOARD_PATH}", out / "monitoring_dashboard.png",
                window="1250,2600", wait_ms=1000))
    print(shoot(f"file://{report.resolve()}", out / "model_report.png", window="1200,3000", wait_ms=1000))


if __name__ == "__main__":
    typer.run(main)
