"""Hostile input and faults off the happy path, through the `churn` commands a person runs (issue 32's cases).

Counts, not seconds. Each case damages a copy of one small, fully run warehouse (features, a champion, scores,
monitoring, outreach) the way a person or a crash would, runs the commands that meet the damage, then the repair
the error names, and counts:

* **silent-wrong**: a command that exits 0 (or answers) with a wrong result, e.g. "not published" for a lost table;
* **lost**: published data that is gone, changed or unreadable after the documented repair (or an original
  changed by a copy);
* **"a bug?"**: an "unexpected … (a bug?)" line, for a condition a user caused.

``python bench/bench_hostile.py`` (about 4 minutes); the row goes to docs/benchmarks.md (Reliability off the happy
path).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

START, DAYS, PER_DAY = date(2026, 1, 5), 80, 40
RUN_DATE = START + timedelta(days=75)  # features up to here; the champion trained on it
BASE_ENV = {"CHURN_FEATURE_ENGINE": "duckdb", "CHURN_TRAINING_WINDOW_DAYS": "30", "CHURN_VALIDATION_DAYS": "7"}


class Outcome:
    def __init__(self) -> None:
        self.silent_wrong, self.lost, self.bugs, self.notes = 0, 0, 0, []

    def expect(self, ok: bool, what: str, kind: str = "silent_wrong") -> None:
        if not ok:
            setattr(self, kind, getattr(self, kind) + 1)
            self.notes.append(f"{kind}: {what}")


def churn(root: Path, *args: str, out: Outcome, env: dict | None = None, code: int | None = None,
          says: str | None = None) -> subprocess.CompletedProcess:
    """One `churn` command on ``root``; counts an "a bug?" line, a wrong exit code (silent-wrong) and a missing
    phrase in the error (silent-wrong: the error does not say what happened)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    result = subprocess.run([sys.executable, "-c", "from churn.cli import main; main()", *args], capture_output=True, text=True, timeout=600,
                            env=clean | BASE_ENV | {"CHURN_WAREHOUSE": str(root), "COLUMNS": "200"} | (env or {}))
    if "(a bug?" in result.stderr:
        out.bugs += 1
        out.notes.append(f"a bug?: churn {' '.join(args)}: {result.stderr.strip().splitlines()[-1]}")
    if code is not None:
        out.expect(result.returncode == code, f"churn {' '.join(args)} exited {result.returncode}, not {code}")
    if says is not None:
        out.expect(says in result.stderr + result.stdout, f"churn {' '.join(args)} does not say {says!r}: "
                   + (result.stderr.strip().splitlines() or [""])[-1][:200])
    return result


def rows(root: Path, table: str, out: Outcome) -> str:
    return churn(root, "query", f"SELECT count(*) AS n, count(DISTINCT instance_id) AS ids FROM {table}", "-f", "json",
                 out=out).stdout


def checksums(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "_catalog" not in p.parts}


def age(folder: Path, days: int = 2) -> None:
    """Files written long ago, as orphans of a crash last week would be."""
    then = time.time() - days * 86400
    for p in folder.rglob("*"):
        os.utime(p, (then, then))


# ---- the cases ------------------------------------------------------------------------------------------


def lost_catalog(root: Path, out: Outcome) -> None:
    before = rows(root, "instances_w1", out)
    (root / "_catalog" / "iceberg.db").unlink()
    churn(root, "score", "--ds", RUN_DATE.isoformat(), out=out, code=1, says="churn catalog recover")
    churn(root, "features", "--ds", (RUN_DATE + timedelta(days=1)).isoformat(), out=out, code=1,
          says="churn catalog recover")
    churn(root, "doctor", "--check", "catalog", out=out, code=1, says="churn catalog recover")
    churn(root, "catalog", "recover", out=out, code=0)
    out.expect(rows(root, "instances_w1", out) == before, "rows after recover differ", "lost")


def copied_warehouse(root: Path, out: Outcome) -> None:
    copy = root.parent / "copy"
    shutil.copytree(root, copy, symlinks=True)
    sums = checksums(root)
    churn(copy, "features", "--ds", (RUN_DATE + timedelta(days=1)).isoformat(), out=out, code=1,
          says="copied warehouse")
    churn(copy, "maintain", out=out, code=1, says="copied warehouse")
    churn(copy, "catalog", "recover", out=out, code=0, says="relocated")
    following = (RUN_DATE + timedelta(days=1)).isoformat()
    for args in (("features", "--ds", following), ("train", "--run-date", following), ("score", "--ds", following),
                 ("monitor", "--start", following, "--end", following), ("outreach", "assign", "--ds", following),
                 ("maintain",)):
        churn(copy, *args, out=out, code=0)
    out.expect(checksums(root) == sums, "the original changed while the copy ran", "lost")
    shutil.rmtree(copy)


def odd_registry_event(root: Path, out: Outcome) -> None:
    history = root / "models" / "churn_w1" / "history"
    last = sorted(history.glob("e*.json"))[-1]
    (history / "e99999999.json").write_text(json.dumps(json.loads(last.read_text()) | {"seq": 99999999}))
    train = churn(root, "train", "--run-date", (RUN_DATE - timedelta(days=7)).isoformat(), "--json", out=out, code=0)
    version = json.loads(train.stdout)["version"]
    champion = json.loads(churn(root, "models", "show", "champion", out=out).stdout)["version"]
    if champion != version:
        churn(root, "models", "promote", version, "--reason", "test", "--yes", out=out, code=0)
    listed = churn(root, "models", "show", "champion", out=out).stdout
    out.expect(json.loads(listed)["version"] == version, "promote reported success, the champion did not change")
    churn(root, "models", "rollback", "--reason", "test", "--yes", out=out, code=0)
    churn(root, "models", "repair", out=out, code=0, says="e99999999.json")


def hostile_ids(root: Path, out: Outcome) -> None:
    from churn.core.settings import Settings
    from churn.core.warehouse import read_partition, write_partition

    settings = Settings(_env_file=None, warehouse=str(root))
    day = RUN_DATE + timedelta(days=3)
    frame = read_partition("instances_w1", RUN_DATE, settings).head(4).drop(columns="dt")
    ids = ["[/x]", "[bold red]fake[/]", "\x1b[2J\x1b[31mred", "tab\there"]
    write_partition("instances_w1", day, frame.assign(instance_id=ids), settings)
    shown = churn(root, "query", f"SELECT instance_id FROM instances_w1 WHERE dt = DATE '{day}'", out=out, code=0)
    out.expect("\x1b" not in shown.stdout and "[bold red]fake[/]" in shown.stdout, "an id was printed as markup")
    churn(root, "models", "promote", "champion", "--reason", "[/x] \x1b[2J", "--yes", out=out, code=0)
    history = churn(root, "models", "history", out=out, code=0)
    out.expect("\x1b" not in history.stdout, "a reason was sent to the terminal as an escape sequence")


def two_first_trainings(root: Path, out: Outcome) -> None:
    env = {"CHURN_MODEL_NAME": "race"}
    runs = [subprocess.Popen([sys.executable, "-c", "from churn.cli import main; main()", "train", "--run-date", RUN_DATE.isoformat(), "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={k: v for k, v in os.environ.items() if not k.startswith("CHURN_")} | BASE_ENV
                             | {"CHURN_WAREHOUSE": str(root), "CHURN_SEED": str(seed)} | env) for seed in (1, 2)]
    results = [json.loads(r.communicate()[0]) for r in runs]
    firsts = [r for r in results if r["reason"].startswith("first model")]
    out.expect(len(firsts) <= 1, "two trainings both became the first champion")


def outreach_rerun(root: Path, out: Outcome) -> None:
    day = RUN_DATE.isoformat()
    before = churn(root, "query", f"SELECT instance_id, channel, holdout FROM outreach_assignments WHERE dt = DATE "
                                  f"'{day}' ORDER BY 1", "-f", "csv", out=out).stdout
    churn(root, "train", "--run-date", (RUN_DATE - timedelta(days=3)).isoformat(), out=out, code=0)
    history = churn(root, "models", "history", out=out).stdout
    churn(root, "models", "rollback", "--reason", "rescore with another model", "--yes", out=out)
    churn(root, "score", "--ds", day, out=out, code=0)  # other scores for a day the CRM has acted on
    churn(root, "outreach", "assign", "--ds", day, out=out)
    after = churn(root, "query", f"SELECT instance_id, channel, holdout FROM outreach_assignments WHERE dt = DATE "
                                 f"'{day}' ORDER BY 1", "-f", "csv", out=out).stdout
    out.expect(after == before, "a published day's assignments were rewritten", "lost")
    del history


def guard_setting(root: Path, out: Outcome) -> None:
    churn(root, "train", "--run-date", RUN_DATE.isoformat(), env={"CHURN_PROMOTION_AUC_FLOOR": "-1"}, out=out, code=2,
          says="CHURN_PROMOTION_AUC_FLOOR")


def locked_catalog(root: Path, out: Outcome) -> None:
    holder = sqlite3.connect(root / "_catalog" / "iceberg.db")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        churn(root, "score", "--ds", RUN_DATE.isoformat(), out=out, code=1, says="locked")
    finally:
        holder.rollback()
        holder.close()


def damaged_catalog(root: Path, out: Outcome) -> None:
    before = rows(root, "instances_w1", out)
    path = root / "_catalog" / "iceberg.db"
    path.write_bytes(b"garbage" * 512)
    churn(root, "score", "--ds", RUN_DATE.isoformat(), out=out, code=1, says="is damaged")
    path.unlink()
    churn(root, "catalog", "recover", out=out, code=0)
    out.expect(rows(root, "instances_w1", out) == before, "rows after recover differ", "lost")


def missing_data_file(root: Path, out: Outcome) -> None:
    day = RUN_DATE.isoformat()
    for f in (root / "features" / "instances_w1" / "data" / f"dt={day}").glob("*.parquet"):
        f.unlink()
    churn(root, "score", "--ds", day, out=out, code=1, says=f"publish dt={day} again")
    churn(root, "features", "--ds", day, out=out, code=0)
    churn(root, "score", "--ds", day, out=out, code=0)


def truncated_metadata(root: Path, out: Outcome) -> None:
    folder = root / "predictions" / "instances_w1_scored" / "metadata"
    files = sorted(folder.glob("*.metadata.json"))
    files[-1].write_bytes(files[-1].read_bytes()[:400])
    churn(root, "score", "--ds", RUN_DATE.isoformat(), out=out, code=1, says="--metadata")
    churn(root, "catalog", "recover", "--table", "instances_w1_scored", "--metadata", str(files[-2]), out=out, code=0)
    churn(root, "score", "--ds", RUN_DATE.isoformat(), out=out, code=0)


def damaged_page(engine: str) -> Callable[[Path, Outcome], None]:
    def case(root: Path, out: Outcome) -> None:
        import pyarrow.parquet as pq

        day = RUN_DATE - timedelta(days=3)
        path = next((root / "raw" / "events" / f"dt={day}").glob("*.parquet"))
        data = bytearray(path.read_bytes())
        start = pq.ParquetFile(path).metadata.row_group(0).column(0).data_page_offset
        data[start + 8:start + 208] = b"\x55" * 200
        path.write_bytes(data)
        churn(root, "features", "--ds", RUN_DATE.isoformat(), env={"CHURN_FEATURE_ENGINE": engine}, out=out, code=1,
              says="cannot be decoded")
    case.__name__ = f"damaged_page_{engine}"
    return case


def killed_maintenance(root: Path, out: Outcome) -> None:
    from churn.core.settings import Settings

    settings = Settings(_env_file=None, warehouse=str(root))
    for _ in range(2):  # snapshots to expire: each rewrite of the day leaves its predecessor's files
        churn(root, "score", "--ds", RUN_DATE.isoformat(), out=out, code=0)
    code = ("import os, sys\nfrom datetime import UTC, datetime, timedelta\nfrom pyiceberg.io.pyarrow import "
            "PyArrowFileIO\nfrom churn import jobs\nfrom churn.core.settings import Settings\n"
            "PyArrowFileIO.delete = lambda self, location: os._exit(9)\n"
            "jobs.maintain_tables(Settings(_env_file=None, warehouse=sys.argv[1]), now=datetime.now(UTC) + "
            "timedelta(days=30))\n")
    subprocess.run([sys.executable, "-c", code, settings.warehouse], capture_output=True, timeout=300)
    age(root)
    result = churn(root, "maintain", "--json", out=out, code=0)
    orphans = sum(t.get("orphans_deleted", 0) for t in json.loads(result.stdout)["tables"])
    out.expect(orphans > 0, "the files the killed maintenance left were not removed")
    churn(root, "score", "--ds", RUN_DATE.isoformat(), out=out, code=0)


def killed_feature_run(root: Path, out: Outcome) -> None:
    data = root / "features" / "instances_modeling" / "data"
    before = set(data.rglob("*.parquet"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")} | BASE_ENV | {"CHURN_WAREHOUSE": str(root)}
    run = subprocess.Popen([sys.executable, "-c", "from churn.cli import main; main()", "features", "--start", (START + timedelta(days=31))
                           .isoformat(), "--end", RUN_DATE.isoformat(), "--no-resume"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (set(data.rglob("*.parquet")) - before) and run.poll() is None:
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    left = set(data.rglob("*.parquet")) - before
    print(f"    the killed feature run left {len(left)} data files")
    age(data)
    churn(root, "maintain", out=out, code=0)
    out.expect(not (left & set(data.rglob("*.parquet"))), f"{len(left)} files of the killed run were not removed")
    churn(root, "features", "--ds", RUN_DATE.isoformat(), out=out, code=0)


def monitor_out(root: Path, out: Outcome) -> None:
    raw = next((root / "raw" / "evaluations").glob("*.parquet"))
    before = raw.read_bytes()
    churn(root, "monitor", "report", "--out", str(root.parent / "missing" / "folder" / "page.html"), out=out, code=0)
    churn(root, "monitor", "report", "--out", str(raw), out=out, code=2, says="holds the warehouse's data")
    churn(root, "monitor", "report", "--out", str(root.parent), out=out, code=2, says="is a folder")
    out.expect(raw.read_bytes() == before, "--out replaced raw data", "lost")


def query_files(root: Path, out: Outcome) -> None:
    result = churn(root, "query", "SELECT * FROM read_text('/etc/passwd')", out=out, code=2)
    out.expect("root:" not in result.stdout, "churn query read a file outside the warehouse")


CASES = [lost_catalog, copied_warehouse, odd_registry_event, hostile_ids, two_first_trainings, outreach_rerun,
         guard_setting, locked_catalog, damaged_catalog, missing_data_file, truncated_metadata, damaged_page("duckdb"),
         damaged_page("spark"), killed_maintenance, killed_feature_run, monitor_out, query_files]


def build_base(root: Path) -> None:
    out = Outcome()
    churn(root, "simulate", "--start", START.isoformat(), "--days", str(DAYS), "--instances-per-day", str(PER_DAY),
          out=out, code=0)
    churn(root, "features", "--start", (START + timedelta(days=31)).isoformat(), "--end", RUN_DATE.isoformat(), out=out,
          code=0)
    churn(root, "train", "--run-date", RUN_DATE.isoformat(), out=out, code=0)
    churn(root, "score", "--ds", RUN_DATE.isoformat(), out=out, code=0)
    churn(root, "monitor", "--start", RUN_DATE.isoformat(), "--end", RUN_DATE.isoformat(), out=out, code=0)
    churn(root, "outreach", "assign", "--ds", RUN_DATE.isoformat(), out=out, code=0)
    if out.notes:
        raise SystemExit(f"the base warehouse could not be built: {out.notes}")


def main() -> None:
    from bench.report import record

    work = Path(tempfile.mkdtemp(prefix="churn-bench-hostile-"))
    base = work / "base" / "warehouse"
    build_base(base)
    totals = {"cases": 0, "silent_wrong": 0, "lost": 0, "bugs": 0}
    for case in CASES:
        root = work / case.__name__ / "warehouse"
        shutil.copytree(base, root, symlinks=True)
        churn(root, "catalog", "recover", out=Outcome(), code=0)  # the copy's own tables (see copied_warehouse)
        out = Outcome()
        started = time.perf_counter()
        case(root, out)
        totals["cases"] += 1
        for key in ("silent_wrong", "lost", "bugs"):
            totals[key] += getattr(out, key)
        print(f"{case.__name__:22s} silent-wrong {out.silent_wrong} lost {out.lost} a-bug {out.bugs} "
              f"({time.perf_counter() - started:.0f} s)" + "".join(f"\n    {n}" for n in out.notes), flush=True)
        shutil.rmtree(work / case.__name__)
    print(totals)
    record("Reliability off the happy path", ["cases", "silent-wrong", "lost", '"a bug?" messages'],
           [totals["cases"], f"**{totals['silent_wrong']}** (goal 0)", f"**{totals['lost']}** (goal 0)",
            f"**{totals['bugs']}** (goal 0)"], str(totals["cases"]))
    shutil.rmtree(work)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
