"""Publishing is atomic under kills and concurrency (issue 9): a writer killed at any point of a commit
leaves the previous partition whole, and a concurrent reader only ever sees one whole version."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from datetime import date

import pytest

from churn.core.settings import Settings
from churn.core.warehouse import list_partitions, read_partition, write_partition
from churn.dev.torture import CRASH_POINTS, version_frame, whole

DAY = date(2026, 3, 2)


@pytest.fixture()
def published(tmp_path):
    settings = Settings(warehouse=str(tmp_path / "warehouse"), _env_file=None)
    write_partition("instances_w1", DAY, version_frame(settings, DAY, "b"), settings)
    return settings


def _writer(settings, rounds: int, crash: str | None = None) -> subprocess.Popen:
    args = [sys.executable, "-m", "churn.dev.torture", settings.warehouse, DAY.isoformat(), str(rounds)]
    return subprocess.Popen([*args, *([crash] if crash else [])], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_writer_killed_at_each_crash_point_leaves_a_whole_partition(published, point):
    writer = _writer(published, 1, point)  # would publish version a over b
    assert writer.wait(timeout=120) == 9, writer.stderr.read().decode()[-2000:]
    expected = "a" if point == "after_commit" else "b"
    assert whole(read_partition("instances_w1", DAY, published)) == expected
    assert list_partitions("instances_w1", published) == [DAY]
    write_partition("instances_w1", DAY, version_frame(published, DAY, "a"), published)  # and it goes on
    assert whole(read_partition("instances_w1", DAY, published)) == "a"


def test_concurrent_writers_and_random_kills_never_show_a_partial_partition(published):
    """Two writers race on the same day while this process reads it; then writers are killed at random."""
    reads, seen = 0, {"a": 0, "b": 0}
    writers = [_writer(published, 12), _writer(published, 12)]
    deadline = time.monotonic() + 240
    while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
        version = whole(read_partition("instances_w1", DAY, published))
        assert version is not None, "a reader saw a partial or mixed partition"
        seen[version] += 1
        reads += 1
    for w in writers:
        assert w.wait(timeout=60) == 0, w.stderr.read().decode()[-2000:]  # refused commits were retried
    assert reads > 0 and len(writers[0].stdout.read().split()) == 12
    rng = random.Random(9)
    for _ in range(4):
        writer = _writer(published, 50)
        time.sleep(rng.uniform(1.0, 3.0))  # interpreter start-up is ~1-2 s: kills land before, during, after commits
        writer.kill()
        writer.wait()
        assert whole(read_partition("instances_w1", DAY, published)) in ("a", "b")
    assert list_partitions("instances_w1", published) == [DAY]
