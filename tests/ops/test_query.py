"""`churn query`: Athena SQL on the warehouse through DuckDB views, local and on S3 (moto)."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from churn.core.contract import EVALUATIONS_SCHEMA, EVENTS_SCHEMA
from churn.core.tables import table_location
from churn.core.warehouse import write_partition
from churn.ops.query import QueryError, run_query, table_data, to_duckdb
from tests.ops.conftest import feature_frame, publish_features

D1, D2, D3 = date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)


def write_raw(settings) -> None:
    """Raw tables as producers write them: no manifests."""
    os.makedirs(table_location("evaluations", settings), exist_ok=True)
    evaluations = pa.Table.from_pylist(
        [
            {"instance_id": "a", "eval_start_date": date(2024, 2, 1), "converted_date": date(2024, 2, 20)},
            {"instance_id": "b", "eval_start_date": date(2024, 2, 1), "converted_date": None},
        ],
        schema=EVALUATIONS_SCHEMA,
    )
    pq.write_table(evaluations, os.path.join(table_location("evaluations", settings), "part-00000.parquet"))
    for day, count in ((D1, 2), (D2, 3)):
        folder = os.path.join(table_location("events", settings), f"dt={day}")
        os.makedirs(folder, exist_ok=True)
        rows = [
            {
                "instance_id": "a",
                "user_id": f"u{k}",
                "event_time": datetime(day.year, day.month, day.day, 10, tzinfo=UTC),
                "event_type": "issue_created",
                "platform": "web",
            }
            for k in range(count)
        ]
        pq.write_table(pa.Table.from_pylist(rows, schema=EVENTS_SCHEMA), os.path.join(folder, "part-00000.parquet"))


@pytest.fixture()
def local(tmp_path, settings_for):
    settings = settings_for(warehouse=tmp_path / "warehouse")
    publish_features(settings, "instances_w1", {D1: 3, D2: 4})
    write_raw(settings)
    return settings


def test_the_documented_example(local):
    sql = "SELECT dt, count(*) AS n FROM churn.instances_w1 GROUP BY dt ORDER BY dt DESC LIMIT 5"
    frame = run_query(sql, local)
    assert frame.to_dict(orient="records") == [{"dt": D2, "n": 4}, {"dt": D1, "n": 3}]  # Iceberg: dt is a date


def test_unqualified_names_types_and_athena_functions(local):
    frame = run_query(
        "SELECT instance_id, eval_start_date, date_add('day', 7, eval_start_date) AS d7, dt "
        "FROM instances_w1 WHERE dt = '2024-03-01' ORDER BY instance_id",
        local,
    )
    assert len(frame) == 3
    assert frame["eval_start_date"].iloc[0] == date(2024, 2, 23)
    # sqlglot turns Athena's date_add into DATE + INTERVAL, which DuckDB types as a TIMESTAMP
    assert frame["d7"].iloc[0].date() == date(2024, 3, 1)
    assert set(frame["dt"]) == {D1}
    assert (
        run_query("SELECT count(DISTINCT instance_id) AS n FROM awsdatacatalog.churn.instances_w1", local)["n"][0] == 7
    )


def test_only_published_partitions_are_read(local):
    root = table_location("instances_w1", local)
    # Parquet files that no snapshot lists (a dt= folder, staging, an uncommitted data file) are invisible
    for folder in ("dt=2024-03-03", "_staging/abc", "data/dt=2024-03-03"):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        feature_frame("instances_w1", D3, 5, local).to_parquet(os.path.join(root, folder, "part-00000.parquet"))
    assert run_query("SELECT count(*) AS n FROM instances_w1", local)["n"][0] == 7
    assert table_data("instances_w1", local).partitions == 2


def test_raw_tables_without_manifests(local):
    events = run_query("SELECT dt, count(*) AS n FROM churn.events GROUP BY dt ORDER BY dt", local)
    assert events.to_dict(orient="records") == [{"dt": "2024-03-01", "n": 2}, {"dt": "2024-03-02", "n": 3}]
    joined = run_query(
        "SELECT e.instance_id, count(*) AS n, max(v.converted_date) AS converted "
        "FROM churn.events e JOIN churn.evaluations v ON e.instance_id = v.instance_id GROUP BY 1",
        local,
    )
    assert joined.to_dict(orient="records") == [{"instance_id": "a", "n": 5, "converted": date(2024, 2, 20)}]
    assert "dt" not in run_query("SELECT * FROM evaluations", local).columns


def test_a_republished_day_replaces_its_rows_and_old_snapshots_stay_readable(local):
    from churn.core.warehouse import current_snapshot_id, read_partition

    before = current_snapshot_id("instances_w1", local)
    write_partition("instances_w1", D1, feature_frame("instances_w1", D1, 1, local), local)
    assert run_query("SELECT dt, count(*) AS n FROM instances_w1 GROUP BY dt ORDER BY dt", local).to_dict(
        orient="records") == [{"dt": D1, "n": 1}, {"dt": D2, "n": 4}]
    assert len(read_partition("instances_w1", D1, local, snapshot_id=before)) == 3  # time travel


def test_cte_names_are_not_tables(local):
    frame = run_query("WITH w AS (SELECT * FROM instances_w1) SELECT count(*) AS n FROM w", local)
    assert frame["n"][0] == 7


def test_unknown_table_lists_the_available_ones(local):
    with pytest.raises(QueryError) as info:
        run_query("SELECT * FROM churn.instances_w2", local)
    message = str(info.value)
    assert "unknown table churn.instances_w2" in message
    assert "churn.instances_w1 (2 partitions)" in message and "churn.instances_w1_scored (no data yet)" in message
    with pytest.raises(QueryError, match="unknown table other.instances_w1"):
        run_query("SELECT * FROM other.instances_w1", local)


def test_table_without_partitions_says_so(local):
    with pytest.raises(QueryError) as info:
        run_query("SELECT * FROM churn.instances_w1_scored", local)
    assert "churn.instances_w1_scored has no published partitions" in str(info.value)
    assert "view omitted" in str(info.value)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELEC dt FROM instances_w1", "SQL syntax error"),
        ("SELECT FROM WHERE", "SQL syntax error"),
        ("SELECT 'unterminated FROM instances_w1", "SQL syntax error"),
        ("DROP TABLE instances_w1", "only queries"),
        ("SELECT 1; SELECT 2", "exactly one SQL statement"),
        ("SELECT no_such_column FROM instances_w1", "query failed: Binder Error"),
    ],
)
def test_errors_are_one_line(local, sql, expected):
    with pytest.raises(QueryError) as info:
        run_query(sql, local)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_translation():
    assert to_duckdb("SELECT approx_distinct(x) FROM awsdatacatalog.churn.t") == (
        "SELECT APPROX_COUNT_DISTINCT(x) FROM churn.t"
    )


def cli():
    from churn.cli import app

    return app


def test_cli_table_csv_json_and_errors(local):
    runner = CliRunner()
    sql = "SELECT dt, count(*) AS n FROM churn.instances_w1 GROUP BY dt ORDER BY dt"
    result = runner.invoke(cli(), ["query", sql])
    assert result.exit_code == 0, result.output
    assert "2024-03-01" in result.output and "2 rows" in result.output
    result = runner.invoke(cli(), ["query", sql, "--max-rows", "1"])
    assert "2024-03-02" not in result.output and "first 1 shown" in result.output
    result = runner.invoke(cli(), ["query", sql, "--format", "csv"])
    assert result.output.splitlines() == ["dt,n", "2024-03-01,3", "2024-03-02,4"]
    result = runner.invoke(cli(), ["query", "SELECT instance_id, eval_start_date FROM instances_w1 ORDER BY dt, instance_id LIMIT 1",
                                   "--format", "json"])
    assert json.loads(result.output) == [{"instance_id": "i0301-0", "eval_start_date": "2024-02-23"}]
    result = runner.invoke(cli(), ["query", "SELECT * FROM nope"])
    assert result.exit_code == 2  # the SQL is at fault: bad input
    assert result.output.startswith("error: unknown table nope") and "Traceback" not in result.output


def test_query_on_s3_through_httpfs(aws, settings_for):
    boto3.client("s3", region_name="us-east-1", endpoint_url=aws).create_bucket(Bucket="churn-q")
    settings = settings_for(warehouse="s3://churn-q/warehouse", s3_endpoint_url=aws, aws_endpoint_url=aws,
                            table_catalog="glue")
    publish_features(settings, "instances_w1", {D1: 3, D2: 2})
    frame = run_query("SELECT dt, count(*) AS n FROM churn.instances_w1 GROUP BY dt ORDER BY dt", settings)
    assert frame.to_dict(orient="records") == [{"dt": D1, "n": 3}, {"dt": D2, "n": 2}]
    with pytest.raises(QueryError, match="no published partitions under s3://churn-q/warehouse/features/instances_mod"):
        run_query("SELECT * FROM instances_modeling", settings)


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_csv('/etc/passwd', header=false) CROSS JOIN instances_w1",
    "SELECT * FROM instances_w1 CROSS JOIN read_text('{other}')",
    "SELECT * FROM read_blob('/etc/hostname')",
])
def test_a_query_reads_only_the_tables_it_names(local, tmp_path, sql):
    """`churn query` is read access to the warehouse's tables, not to the machine: any other file is refused."""
    other = tmp_path / "secret.txt"
    other.write_text("not a table")
    with pytest.raises(QueryError, match="disabled by configuration|Permission Error|only queries"):
        run_query(sql.replace("{other}", str(other)), local)
