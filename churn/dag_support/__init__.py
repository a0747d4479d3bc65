"""What the DAG files share: which days a run is about, the task wrapper and its alerts, the EMR request."""
