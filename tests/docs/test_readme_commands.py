"""The README's everyday commands run green, as written, one after the other on a fresh warehouse (the state
a new user has after `make demo`'s simulation: data ending yesterday). Only the simulation is smaller (40 trials a
day instead of 200) and the feature engine is DuckDB: Spark's path is the other tests'."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from churn.core.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow


def readme_commands() -> tuple[str, list[str]]:
    text = (PROJECT_ROOT / "README.md").read_text()
    block = text.split("## Everyday commands", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [ln for ln in block.splitlines() if ln.strip()]
    helper = next(ln for ln in lines if ln.startswith("day()"))
    return helper, [ln for ln in lines if ln.startswith(".venv/bin/churn")]


def test_the_readme_everyday_commands_work_on_a_warehouse_ending_yesterday(tmp_path):
    helper, commands = readme_commands()
    assert len(commands) >= 14 and all("2026-" not in c for c in commands)  # no fixed date left behind
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    env |= {"CHURN_WAREHOUSE": str(tmp_path / "warehouse"), "CHURN_FEATURE_ENGINE": "duckdb"}
    for command in commands:
        command = command.replace("--instances-per-day 200", "--instances-per-day 40")
        script = helper.replace(".venv/bin/python", str(bin_dir / "python")) + "\n" + \
            command.replace(".venv/bin/churn", str(bin_dir / "churn"))
        result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, f"{command}\n{result.stdout[-1500:]}\n{result.stderr[-2500:]}"
        assert "a bug?" not in result.stderr
        if re.search(r"churn (score|monitor|outreach assign|train) ", command):
            assert "skipped:" not in result.stderr.replace("published, skipped:", ""), f"{command} only skipped:\n{result.stderr[-800:]}"
    assert (tmp_path / "dashboard.html").stat().st_size > 10_000
