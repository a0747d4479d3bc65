"""Hostile input (issue 9): nothing a producer or a configuration can put in reaches the published
features silently. Each case either gets a contract error naming the table, the file or the column, or a
counted, documented handling; both engines behave the same."""

from __future__ import annotations

import os
import shutil
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churn.core.contract import EVALUATIONS_SCHEMA, EVENTS_OPTIONAL, EVENTS_SCHEMA, DataContractError
from churn.core.feature_config import FeatureConfigError, load_feature_config
from churn.core.settings import Settings
from churn.core.sql_templates import sql_list
from churn.core.tables import table, table_location
from churn.core.warehouse import read_partition
from churn.etl_jobs.build_features import build_features

from .raw_fixture import days, ts, write_evaluations, write_events

START = date(2026, 5, 4)
DT = START + timedelta(days=7)
ALL_DAYS = days(START - timedelta(days=31), START + timedelta(days=10))
PAYLOAD = "') OR 1=1 THEN 1 ELSE 0 END) AS mobile_usage, --"


@pytest.fixture(params=["spark", "duckdb"])
def engine_settings(request, warehouse):
    return Settings(warehouse=warehouse.warehouse, feature_engine=request.param, _env_file=None)


def _build(settings, spark, end: date = DT):
    return build_features(DT, end, settings, tables=["instances_w1"],
                          spark=spark if settings.feature_engine == "spark" else None)


def _w1(settings):
    return read_partition(table("instances_w1"), DT, settings).set_index("instance_id")


@pytest.mark.parametrize("dialect", ["spark", "duckdb"])
def test_configured_values_are_literals_in_both_dialects(dialect, spark):
    values = ["mobile\\", PAYLOAD, "it's", "a\\'b", "plain"]
    candidates = [*values, "mobile", "x", "mobile\\\\"]
    rows = " UNION ALL ".join(f"SELECT {sql_list([v])} AS v" for v in candidates)
    sql = f"SELECT v FROM ({rows}) AS t WHERE v IN ({sql_list(values)})"
    if dialect == "spark":
        found = [r.v for r in spark.sql(sql).collect()]
    else:
        import duckdb
        import sqlglot

        found = [r[0] for r in duckdb.sql(sqlglot.transpile(sql, read="spark", write="duckdb")[0]).fetchall()]
    assert sorted(found) == sorted(values)


def test_injection_payload_in_the_configuration_stays_a_value(warehouse, engine_settings, spark, tmp_path):
    config = tmp_path / "features.yaml"
    config.write_text(
        "count_features:\n  number_of_issues: [issue_created]\n"
        f"mobile_platforms: ['mobile\\', '{PAYLOAD.replace(chr(39), chr(39) * 2)}']\n"
        "key_event_types: [issue_created]\n"
    )
    assert load_feature_config(path=config).mobile_platforms == ["mobile\\", PAYLOAD]
    settings = engine_settings.model_copy(update={"feature_config": str(config)})
    write_evaluations(settings, [{"instance_id": "A", "eval_start_date": START, "converted_date": None}])
    events = [{"instance_id": "A", "event_time": ts(START, 9 + i), "event_type": "issue_created",
               "platform": platform} for i, platform in enumerate(["web", "mobile", "mobile\\", "web"])]
    write_events(settings, events, ALL_DAYS)
    _build(settings, spark)
    row = _w1(settings).loc["A"]
    assert (row["w1_events"], row["mobile_usage"]) == (4, 1)  # only the literal value 'mobile\' matched


def test_unknown_configuration_keys_are_errors(tmp_path):
    config = tmp_path / "features.yaml"
    config.write_text("count_features:\n  number_of_issues: [issue_created]\nmobile_platform: [ios]\n")
    with pytest.raises(FeatureConfigError, match=r"unknown key 'mobile_platform' \(did you mean 'mobile_platforms'\?\)"):
        load_feature_config(path=config)
    config.write_text("count_features:\n  n: [a]\nattribute_features:\n  size_rank:\n    column: size\n"
                      "    ranks: [s, m]\n    rank: [l]\n")
    with pytest.raises(FeatureConfigError, match=r"attribute feature 'size_rank': unknown key 'rank'"):
        load_feature_config(path=config)
    config.write_text('count_features:\n  n: [a]\nmobile_platforms: ["mob\\nile"]\n')
    with pytest.raises(FeatureConfigError, match="control characters"):
        load_feature_config(path=config)


# ---- raw files -------------------------------------------------------------------------------------------

def _events_folder(settings, day: date) -> str:
    return os.path.join(table("events").location(settings), f"dt={day.isoformat()}")


def _base(settings):
    write_evaluations(settings, [{"instance_id": "A", "eval_start_date": START, "converted_date": None},
                                 {"instance_id": "B", "eval_start_date": START, "converted_date": None}])
    events = [{"instance_id": "A", "event_time": ts(START + timedelta(days=d), 9), "event_type": "issue_created",
               "platform": "mobile"} for d in range(3)]
    events += [{"instance_id": "B", "event_time": ts(START + timedelta(days=1), 10), "event_type": "issue_viewed"}]
    write_events(settings, events, ALL_DAYS)


def _write_file(settings, day: date, name: str, rows: list[dict], schema: pa.Schema | None = None) -> str:
    path = os.path.join(_events_folder(settings, day), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def _row(day: date, hour: float = 12, **values) -> dict:
    return {"instance_id": "A", "user_id": "u2", "event_time": ts(day, hour), "event_type": "issue_created",
            "platform": "mobile", **values}


def test_a_file_without_a_required_column_is_named(engine_settings, spark):
    _base(engine_settings)
    path = _write_file(engine_settings, START + timedelta(days=1), "part-00001.parquet",
                       [{k: v for k, v in _row(START + timedelta(days=1)).items() if k != "platform"}])
    with pytest.raises(DataContractError, match=r"events\.platform: required column is missing in file .*part-00001"):
        _build(engine_settings, spark)
    assert os.path.exists(path)


def test_an_optional_column_missing_from_the_first_partition_is_not_dropped(engine_settings, spark):
    """received_at absent on day 0 only: the late event of day 2 must still be excluded."""
    _base(engine_settings)
    first = _events_folder(engine_settings, ALL_DAYS[0])
    for name in os.listdir(first):
        os.remove(os.path.join(first, name))
    _write_file(engine_settings, ALL_DAYS[0], "part-00000.parquet", [], schema=pa.schema(
        [f.with_nullable(True) for f in EVENTS_SCHEMA]))
    late = _row(START + timedelta(days=2), received_at=ts(START + timedelta(days=9)))
    _write_file(engine_settings, START + timedelta(days=2), "part-00001.parquet", [late],
                schema=pa.schema([*EVENTS_SCHEMA, *EVENTS_OPTIONAL]).with_metadata(None))
    quality = _build(engine_settings, spark)["quality"]
    assert quality["cohort_received_late"] == 1
    assert _w1(engine_settings).loc["A", "w1_events"] == 3  # the late event is not counted


def test_only_parquet_files_directly_in_the_partition_are_read(engine_settings, spark):
    _base(engine_settings)
    day = START + timedelta(days=1)
    folder = _events_folder(engine_settings, day)
    copy = os.path.join(folder, "backup", "part-00000.parquet")
    os.makedirs(os.path.dirname(copy))
    shutil.copy(os.path.join(folder, "part-00000.parquet"), copy)  # a nested copy of the day
    for name in ("README.txt", "part-00001.parquet.tmp", ".part-00000.parquet.crc", "_SUCCESS", "_tmp.parquet"):
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(b"not parquet")
    quality = _build(engine_settings, spark)["quality"]
    assert quality["duplicate_events"] == 0
    assert _w1(engine_settings)[["w1_events", "mobile_usage"]].to_dict("index") == {
        "A": {"w1_events": 3, "mobile_usage": 3}, "B": {"w1_events": 1, "mobile_usage": 0}}


@pytest.mark.parametrize("case", ["received_at_string", "corrupt", "truncated", "nanoseconds", "other_type"])
def test_bad_files_are_contract_errors_naming_table_file_and_column(warehouse, spark, case):
    _base(warehouse)
    day = START + timedelta(days=2)
    row = _row(day)
    if case == "received_at_string":
        _write_file(warehouse, day, "part-00001.parquet", [row | {"received_at": "yesterday"}])
        expected = r"events\.received_at: expected type timestamp, found string in file .*part-00001\.parquet"
    elif case in ("corrupt", "truncated"):
        path = _write_file(warehouse, day, "part-00001.parquet", [row])
        data = open(path, "rb").read()
        with open(path, "wb") as handle:
            handle.write(data[: len(data) // 2] if case == "truncated" else b"PAR1" + b"\x00" * 64 + data[-8:])
        expected = r"events\.\*: file .*dt=2026-05-06/part-00001\.parquet is not a readable Parquet file"
    elif case == "nanoseconds":
        schema = pa.schema([f.with_type(pa.timestamp("ns", tz="UTC")) if f.name == "event_time" else f
                            for f in EVENTS_SCHEMA])
        _write_file(warehouse, day, "part-00001.parquet", [row], schema=schema)
        expected = r"events\.event_time: expected type timestamp, found timestamp\[ns\] in file .*part-00001"
    else:
        _write_file(warehouse, day, "part-00001.parquet", [row | {"platform": 3}])
        expected = r"events\.platform: expected type string, found bigint in file .*part-00001"
    with pytest.raises(DataContractError, match=expected) as info:
        _build(warehouse, spark)
    assert "\n" not in str(info.value)


def test_converted_before_start_is_rejected_and_future_trials_counted(warehouse, spark):
    _base(warehouse)
    rows = [{"instance_id": "A", "eval_start_date": START, "converted_date": START - timedelta(days=1)},
            {"instance_id": "B", "eval_start_date": START, "converted_date": None}]
    write_evaluations(warehouse, rows)
    with pytest.raises(DataContractError, match=r"evaluations\.converted_date: 1 rows converted before their "
                                                r"eval_start_date .*'instance_id': 'A'"):
        _build(warehouse, spark)
    rows[0]["converted_date"] = None
    write_evaluations(warehouse, [*rows, {"instance_id": "F", "eval_start_date": date(2999, 1, 1), "converted_date": None}])
    assert _build(warehouse, spark)["quality"]["future_evaluations"] == 1


def test_future_trials_are_counted_from_a_file_without_statistics(warehouse, spark):
    """The count comes from the footers' statistics when they prove no sign-up is in the future; a file without
    them is counted by the engine."""
    _base(warehouse)
    rows = [{"instance_id": "A", "eval_start_date": START, "converted_date": None},
            {"instance_id": "F", "eval_start_date": date(2999, 1, 1), "converted_date": None}]
    path = os.path.join(table_location("evaluations", warehouse), "part-00000.parquet")
    pq.write_table(pa.Table.from_pylist(rows, schema=EVALUATIONS_SCHEMA), path, write_statistics=False)
    assert _build(warehouse, spark)["quality"]["future_evaluations"] == 1


def test_exact_duplicate_events_are_counted_and_dropped(engine_settings, spark):
    _base(engine_settings)
    folder = _events_folder(engine_settings, START)
    shutil.copy(os.path.join(folder, "part-00000.parquet"), os.path.join(folder, "part-00001.parquet"))
    quality = _build(engine_settings, spark)["quality"]
    assert quality["duplicate_events"] == 1  # the day's one event, delivered twice
    assert _w1(engine_settings).loc["A", "w1_events"] == 3


@pytest.mark.parametrize("statistics", [True, False])
def test_a_null_instance_id_anywhere_in_the_partitions_read_is_an_error(engine_settings, spark, statistics):
    """Rows outside the cohorts are counted from the files' footers, not read: a null instance_id is still found,
    from the footer's null count, or by a query when the writer kept no statistics."""
    _base(engine_settings)
    day = START + timedelta(days=2)
    path = os.path.join(_events_folder(engine_settings, day), "part-00001.parquet")
    row = _row(day) | {"instance_id": None}
    pq.write_table(pa.Table.from_pylist([row], schema=pa.schema([f.with_nullable(True) for f in EVENTS_SCHEMA])),
                   path, write_statistics=statistics)
    with pytest.raises(DataContractError, match=r"events\.instance_id/user_id/event_time/event_type: 1 rows with "
                                                r"null key values") as info:
        _build(engine_settings, spark)
    assert [r["instance_id"] for r in info.value.examples] == [None]


def test_events_of_other_trials_are_counted_not_checked(engine_settings, spark):
    """An event of a trial outside the run's cohorts (a later day of another trial) that would break a check
    is counted as read and outside the cohorts, and does not fail the run: no feature reads it."""
    _base(engine_settings)
    day = START + timedelta(days=2)
    other = _row(day, instance_id="LATER", user_id=None)  # a null user_id: an error in a cohort trial's row
    _write_file(engine_settings, day, "part-00001.parquet", [other],
                schema=pa.schema([f.with_nullable(True) for f in EVENTS_SCHEMA]))
    quality = _build(engine_settings, spark)["quality"]
    assert quality["outside_first_weeks"] >= 1 and quality["null_keys"] == 0
    assert quality["events_read"] == quality["outside_first_weeks"] + 4  # the cohort's 4 events (A x3, B x1)


def test_events_after_the_first_week_are_counted_not_deduplicated_and_still_checked(engine_settings, spark):
    """A range reads its trials' later days too: a clean row after a trial's first week is only counted (no feature
    reads it, so it is not deduplicated), while a row there that breaks the contract is still an error."""
    _base(engine_settings)
    later = START + timedelta(days=8)  # read by the run for dt..dt+2 (cohorts START..START+2), after A's first week
    folder = _events_folder(engine_settings, later)
    _write_file(engine_settings, later, "part-00001.parquet", [_row(later), _row(later)])  # one event, twice
    quality = _build(engine_settings, spark, end=DT + timedelta(days=2))["quality"]
    assert (quality["outside_first_weeks"], quality["duplicate_events"]) == (2, 0)
    assert _w1(engine_settings).loc["A", "w1_events"] == 3
    _write_file(engine_settings, later, "part-00002.parquet", [_row(later, user_id=None)],
                schema=pa.schema([f.with_nullable(True) for f in EVENTS_SCHEMA]))
    with pytest.raises(DataContractError, match=r"events\.instance_id/user_id/event_time/event_type: 1 rows with "
                                                r"null key values"):
        _build(engine_settings, spark, end=DT + timedelta(days=2))
    assert os.path.exists(folder)


HOSTILE_IDS = ["[/x]", "[bold red]fake[/]", "\x1b[2J\x1b[31mred", "tab\there"]


def test_hostile_instance_ids_publish_and_print_as_data(engine_settings, spark):
    """Ids that look like Rich markup or hold escape sequences are published as they are (both engines) and
    `churn query` prints them as text: never parsed as markup, never sent to the terminal as a sequence."""
    import subprocess
    import sys

    write_evaluations(engine_settings, [{"instance_id": i, "eval_start_date": START, "converted_date": None}
                                        for i in HOSTILE_IDS])
    write_events(engine_settings, [{"instance_id": i, "event_time": ts(START, 9), "event_type": "issue_created",
                                    "platform": "web"} for i in HOSTILE_IDS], ALL_DAYS)
    _build(engine_settings, spark)
    assert sorted(_w1(engine_settings).index) == sorted(HOSTILE_IDS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")} | {
        "CHURN_WAREHOUSE": engine_settings.warehouse, "COLUMNS": "200"}
    shown = subprocess.run([sys.executable, "-c", "from churn.cli import main; main()", "query",
                            "SELECT instance_id FROM instances_w1 ORDER BY 1"], env=env, capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and "\t" not in shown.stdout
    for shown_as in ["[/x]", "[bold red]fake[/]", "\\x1b[2J\\x1b[31mred", "tab\\there"]:
        assert shown_as in shown.stdout, shown.stdout


def test_a_damaged_page_in_a_raw_file_is_a_contract_error_naming_the_file(engine_settings, spark):
    """The footer is intact (the checks pass), a data page is not: the engine's decoding failure is reported as
    the file to replace, on both engines, and nothing is published."""
    from churn.core.warehouse import list_partitions

    write_evaluations(engine_settings, [{"instance_id": f"A{i}", "eval_start_date": START, "converted_date": None}
                                        for i in range(50)])
    write_events(engine_settings, [{"instance_id": f"A{i % 50}", "event_time": ts(START, 9 + i / 500),
                                    "event_type": "issue_created", "platform": "web"} for i in range(3000)], ALL_DAYS)
    path = os.path.join(table_location("events", engine_settings), f"dt={START}", "part-00000.parquet")
    data = bytearray(open(path, "rb").read())
    footer = pq.ParquetFile(path).metadata.row_group(0).column(0).data_page_offset
    data[footer + 8:footer + 208] = b"\x55" * 200  # inside the first column's first data page
    with open(path, "wb") as out:
        out.write(data)
    with pytest.raises(DataContractError, match=r"events\.\(file\): .*part-00000\.parquet cannot be decoded .* "
                                                "replace it from its producer"):
        _build(engine_settings, spark)
    assert list_partitions("instances_w1", engine_settings) == []
