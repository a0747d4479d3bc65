"""Laptop tooling, never imported by the layers below: the simulator, the demo, the local Airflow, screenshots."""
