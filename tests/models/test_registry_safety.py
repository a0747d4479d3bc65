"""The registry cannot wedge (issue 9): one source of truth (the append-only history), atomic appends,
compare-and-swap promotions, damaged files reported with their repair, every crash point consistent."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from churn.cli import app
from churn.models.registry import ConcurrentUpdate, IntegrityError, Registry


def _fake_versions(registry: Registry, n: int) -> list[str]:
    """Registered versions with verifiable artifacts (the registry only checks checksums here)."""
    out = []
    for k in range(n):
        version = f"2030-01-0{k + 1}-fake{k}"
        registry.write_version(version, {"note.json": json.dumps({"k": k}).encode()}, {"version": version})
        out.append(version)
    return out


def test_promoting_the_champion_is_a_noop_and_rollback_keeps_working(local_copy):
    registry = Registry(local_copy.settings)
    champion = registry.alias("champion")["version"]
    before = registry.history()
    assert registry.promote(champion, "again")["event"] == "noop"
    assert registry.history() == before
    other = _fake_versions(registry, 1)[0]
    registry.promote(other, "test")
    assert registry.rollback()["version"] == champion  # its predecessor is not itself
    assert registry.alias("champion")["version"] == champion


def test_a_stale_writer_cannot_append(local_copy):
    registry = Registry(local_copy.settings)
    a, b = _fake_versions(registry, 2)
    state = registry._state()  # both writers read the same history ...
    registry._append("promote", a, state, reason="first")
    with pytest.raises(ConcurrentUpdate, match="another promotion or training won"):
        registry._append("promote", b, state, reason="second")  # ... only the first gets the number
    assert registry.alias("champion")["version"] == a


def test_the_conditional_put_on_s3_refuses_the_second_writer(s3):
    registry = Registry(s3.settings.model_copy(update={"model_name": "cas_test"}))  # not the shared registry
    version = _fake_versions(registry, 1)[0]
    state = registry._state()
    registry._append("challenger", version, state, reason="one")
    with pytest.raises(ConcurrentUpdate):
        registry._append("challenger", version, state, reason="two")
    assert [e["reason"] for e in registry.history()][-1] == "one"


def test_concurrent_promotions_never_lose_an_update(local_copy):
    registry = Registry(local_copy.settings)
    versions = _fake_versions(registry, 6)
    start = threading.Barrier(len(versions))
    won, lost = [], []

    def promote(version):
        start.wait()
        try:
            Registry(local_copy.settings).promote(version, "race")
            won.append(version)
        except ConcurrentUpdate:
            lost.append(version)

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = registry.history()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    promotions = [e for e in events if e["event"] == "promote"]
    for earlier, later in zip(promotions, promotions[1:], strict=False):
        assert later["previous_champion"] == earlier["version"]  # every winner saw the one before it
    assert sorted(won) == sorted(e["version"] for e in promotions if e["version"] in versions)
    assert len(won) + len(lost) == len(versions) and won


CRASH = """
import os, sys
from churn.core.settings import Settings
from churn.models.registry import Registry
os.link = lambda *a, **k: os._exit(9)  # killed after the event is written, before it is published
Registry(Settings(warehouse=sys.argv[1], _env_file=None)).promote(sys.argv[2], "crash")
"""


def test_a_kill_mid_promotion_leaves_the_registry_as_it_was(local_copy):
    settings = local_copy.settings
    registry = Registry(settings)
    champion = registry.alias("champion")["version"]
    other = _fake_versions(registry, 1)[0]
    before = registry.history()
    result = subprocess.run([sys.executable, "-c", CRASH, settings.warehouse, other], capture_output=True, timeout=120)
    assert result.returncode == 9, result.stderr[-2000:]
    assert registry.history() == before and registry.alias("champion")["version"] == champion
    assert registry.problems() == []
    registry.promote(other, "after the crash")
    assert registry.alias("champion")["version"] == other


def test_a_damaged_history_file_is_reported_with_its_repair(local_copy):
    settings = local_copy.settings
    registry = Registry(settings)
    champion = registry.alias("champion")["version"]
    other = _fake_versions(registry, 1)[0]
    registry.promote(other, "to be damaged")
    last = sorted(Path(registry.root, "history").glob("e*.json"))[-1]
    last.write_text("{ not json")
    with pytest.raises(IntegrityError, match=r"champion is uncertain: history file e\d+\.json .* is damaged; run `churn models repair`"):
        registry.champion()
    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list"], env={"CHURN_WAREHOUSE": settings.warehouse})
    assert listed.exit_code == 0 and "churn models repair" in listed.output
    rolled = runner.invoke(app, ["models", "rollback", "--to", champion, "--reason", "settle it", "--yes"], env={"CHURN_WAREHOUSE": settings.warehouse})
    assert rolled.exit_code == 0, rolled.output
    assert registry.champion()[0].version == champion  # a new event settles it
    repaired = runner.invoke(app, ["models", "repair"], env={"CHURN_WAREHOUSE": settings.warehouse})
    assert repaired.exit_code == 0 and "1 damaged file(s) moved" in repaired.output
    assert registry.problems() == [] and (Path(registry.root, "history", "damaged") / last.name).exists()
