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
from churn.models.registry import ConcurrentUpdate, IntegrityError, Registry, RegistryError


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


def test_an_event_numbered_past_a_gap_cannot_wedge_promotion(local_copy):
    """e99999999.json (valid JSON, a real version) is out of sequence: it is reported as damaged with its repair,
    promotions still change the champion (and say so truthfully), rollback and repair work."""
    settings = local_copy.settings
    registry = Registry(settings)
    champion = registry.alias("champion")["version"]
    other = _fake_versions(registry, 1)[0]
    history = Path(registry.root, "history")
    odd = json.loads(sorted(history.glob("e*.json"))[-1].read_text()) | {"seq": 99999999}
    (history / "e99999999.json").write_text(json.dumps(odd))
    assert any("numbered 99999999" in p and "churn models repair" in p for p in registry.problems())
    assert registry.promote(other, "after the odd event")["version"] == other
    assert registry.alias("champion")["version"] == other
    assert registry.rollback(reason="back")["version"] == champion
    assert registry.repair() == ["e99999999.json"] and registry.problems() == []
    registry.promote(other, "after the repair")
    assert registry.alias("champion")["version"] == other
    events = registry.history()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_a_repaired_event_keeps_the_events_after_it(local_copy):
    registry = Registry(local_copy.settings)
    a, b = _fake_versions(registry, 2)
    registry.promote(a, "one")
    damaged = sorted(Path(registry.root, "history").glob("e*.json"))[-1]
    registry.promote(b, "two")
    damaged.write_text("{ not json")
    assert registry.repair() == [damaged.name]
    assert registry.problems() == [] and registry.alias("champion")["version"] == b  # e(n+1) is not out of sequence


def test_a_promote_whose_event_the_history_does_not_show_is_an_error(local_copy, monkeypatch):
    """A promote reports what the history says after it: an event that does not become the champion (here: the
    history reader misses it, as an odd numbering once made it) is an error, not a success."""
    from churn.models import version_store

    registry = Registry(local_copy.settings)
    other = _fake_versions(registry, 1)[0]
    monkeypatch.setattr(version_store, "EVENT_NAME", "x{:08d}.json")  # appended under a name the history ignores
    with pytest.raises(RegistryError, match="still says"):
        registry.promote(other, "unseen")


def test_two_first_trainings_at_once_promote_one_and_judge_the_other(local_copy, monkeypatch):
    """Both decide "first model" on an empty registry before either records it: the second's promotion is refused
    by the compare-and-swap on the champion, and it is judged again against the first."""
    from churn.models import promotion
    from churn.models.train import retrain
    from tests.models.conftest import RUN_DATE

    real_decide = promotion.decide
    both_decided = threading.Barrier(2, timeout=300)
    first_call = threading.local()

    def decide_then_wait(*args, **kwargs):  # the schedule of the race, made certain: decide, wait for the other
        decision = real_decide(*args, **kwargs)
        if not getattr(first_call, "done", False):
            first_call.done = True
            both_decided.wait()
        return decision

    monkeypatch.setattr(promotion, "decide", decide_then_wait)
    results = {}

    def train(seed):
        settings = local_copy.settings.model_copy(update={"model_name": "race", "seed": seed})
        results[seed] = retrain(RUN_DATE, settings)

    threads = [threading.Thread(target=train, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    registry = Registry(local_copy.settings.model_copy(update={"model_name": "race"}))
    first = [e for e in registry.history() if e["event"] == "promote"][0]
    loser = next(r for r in results.values() if r["version"] != first["version"])
    assert first["previous_champion"] is None and first["reason"].startswith("first model")
    assert first["version"] in loser["reason"], loser  # judged against the first champion
    assert not loser["reason"].startswith(("first model", "not promoted: the champion is"))
    for e in registry.history():
        if e["event"] == "promote" and e["previous_champion"]:
            assert e["reason"].startswith(f"promoted over {e['previous_champion']}")
