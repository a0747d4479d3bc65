"""`make demo` twice: the second run starts from the same empty state (folders and Iceberg catalog)."""

from __future__ import annotations

from datetime import date

from churn.core.warehouse import list_partitions, read_partition
from churn.dev.demo import _clean_warehouse
from churn.dev.synthetic import write_w1


def test_a_rerun_of_the_demo_starts_from_an_empty_warehouse(warehouse):
    day = date(2026, 3, 1)
    write_w1(warehouse, day, 5, seed=1)
    said = []
    _clean_warehouse(warehouse, said.append)
    assert "dropped 1 tables from the Iceberg catalog" in said[-1]
    assert list_partitions("instances_w1", warehouse) == []
    write_w1(warehouse, day, 7, seed=2)  # the catalog no longer points at removed metadata
    assert len(read_partition("instances_w1", day, warehouse)) == 7


def test_a_rerun_of_the_demo_starts_without_an_outreach_policy(warehouse):
    from churn.models.outreach import PolicyConfig, PolicyState
    from churn.models.policy_registry import PolicyRegistry

    config = PolicyConfig(PolicyConfig.parse_channels("email:1:10"))
    PolicyRegistry(warehouse).record(PolicyState.prior(config), "2026-03-01", parent=None)
    assert PolicyRegistry(warehouse).current() is not None
    _clean_warehouse(warehouse, [].append)
    assert PolicyRegistry(warehouse).current() is None  # the next demo's policy starts from the prior


def test_without_java_the_demo_runs_the_feature_job_on_duckdb_and_says_so(monkeypatch, tmp_path):
    from churn.core.settings import Settings
    from churn.core.spark import java_available
    from churn.dev.demo import demo_engine

    settings = Settings(_env_file=None, warehouse=str(tmp_path))
    assert demo_engine(settings, java=True) == (settings, {}, None)  # Spark stays the default where Java is
    chosen, env, note = demo_engine(settings, java=False)
    assert chosen.feature_engine == "duckdb" and env == {"CHURN_FEATURE_ENGINE": "duckdb"}
    assert note.startswith("Java not found") and "\n" not in note
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on it
    monkeypatch.delenv("JAVA_HOME", raising=False)
    assert not java_available() and demo_engine(settings)[0].feature_engine == "duckdb"
