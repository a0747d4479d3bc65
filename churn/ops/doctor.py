"""`churn doctor`: a read-only check of a deployment, before the first schedule and whenever something fails.

One line per check, ✓ or ✗ (– when the deployment does not use that part), each ✗ with the fix. The only
write is a probe object in the warehouse, removed again. Exit code 1 when any check fails.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

from churn.core.errors import describe_aws_error as aws_problem
from churn.core.settings import Settings

log = logging.getLogger(__name__)
OK, FAILED, NOT_USED = "✓", "✗", "–"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK, FAILED or NOT_USED
    detail: str

    def line(self) -> str:
        return f"{self.status} {self.name}: {self.detail}"


class Fail(Exception):
    """A failed check; the message says what is wrong and what to do."""


@contextmanager
def failing_as(what: str, fix: str = ""):
    """Any error inside (an AWS refusal, a missing bucket, no credentials) fails the check as one line:
    ``<what>: <reason>[; <fix>]``; a :class:`Fail` raised inside passes as it is."""
    try:
        yield
    except Fail:
        raise
    except Exception as exc:  # noqa: BLE001 - the reason is reported
        raise Fail(f"{what}: {aws_problem(exc) or exc}" + (f"; {fix}" if fix else "")) from None


# ---- the checks --------------------------------------------------------------------------------------

def check_settings(settings: Settings) -> str:
    """Combinations that validate field by field but cannot work together."""
    problems = []
    if settings.deployment == "aws" and not settings.is_remote:
        problems.append("CHURN_DEPLOYMENT=aws with a local CHURN_WAREHOUSE: set CHURN_WAREHOUSE=s3://bucket/prefix")
    if settings.table_catalog == "glue" and not settings.is_remote:
        problems.append("CHURN_TABLE_CATALOG=glue needs an s3:// CHURN_WAREHOUSE (Athena reads S3 only)")
    if settings.spark_runner == "emr_serverless":
        from churn.dag_support.emr import EmrSettingsError, emr_start_job_run_request

        try:
            emr_start_job_run_request(settings, "2000-01-01", "2000-01-01", "doctor")
        except EmrSettingsError as exc:
            problems.append(str(exc))
    elif settings.feature_engine == "spark":
        from churn.core.errors import MissingExtra
        from churn.core.spark import require_pyspark

        try:
            require_pyspark()
            pyspark_missing = None
        except MissingExtra as exc:
            pyspark_missing = str(exc)
        if pyspark_missing:
            problems.append(f"CHURN_FEATURE_ENGINE=spark runs Spark in this process but {pyspark_missing}")
        elif not shutil.which("java"):
            problems.append("CHURN_FEATURE_ENGINE=spark runs Spark in this process but there is no Java here (MWAA "
                            "workers have none): install Java 17, or set CHURN_FEATURE_ENGINE=duckdb or "
                            "CHURN_SPARK_RUNNER=emr_serverless")
        elif settings.is_remote and not _has_s3a():
            problems.append("this pyspark has no hadoop-aws jar, so local Spark cannot write s3://: set "
                            "CHURN_FEATURE_ENGINE=duckdb, use the Docker image (it adds the jar) or "
                            "CHURN_SPARK_RUNNER=emr_serverless")
    if problems:
        raise Fail("; ".join(problems))
    runner = "EMR Serverless" if settings.spark_runner == "emr_serverless" else f"{settings.feature_engine} in this process"
    return f"deployment {settings.deployment}, warehouse {settings.warehouse}, features on {runner}"


def _has_s3a() -> bool:
    from pathlib import Path

    import pyspark

    return any((Path(pyspark.__file__).parent / "jars").glob("hadoop-aws-*.jar"))


def check_warehouse(settings: Settings) -> str:
    """Reachable and writable: a probe object written, read back and removed."""
    from churn.core import storage
    from churn.core.settings import join

    probe = join(settings.warehouse, "_doctor", f"probe-{uuid.uuid4().hex}")
    payload = b"churn doctor probe\n"
    try:
        with failing_as(f"cannot write {probe}", "check the path, the bucket and the worker's "
                        "s3:PutObject/GetObject/DeleteObject permissions"):
            storage.write_bytes(probe, payload, settings)
            if storage.read_bytes(probe, settings) != payload:
                raise Fail(f"the probe object {probe} read back different bytes")
    finally:
        try:
            storage.filesystem(probe, settings).rm(storage.strip_scheme(probe))
        except Exception:  # noqa: BLE001 - absent after a failed write
            pass
    return f"{settings.warehouse} is writable (probe object written, read and removed)"


def check_raw_tables(settings: Settings, days: list[date]) -> str:
    """Raw tables present for the last days, each file's footer against the contract."""
    from churn.core import contract, storage
    from churn.core.dates import describe_days
    from churn.core.settings import join
    from churn.core.tables import EVALUATIONS, EVENTS

    evaluations = EVALUATIONS.location(settings)
    fs = storage.filesystem(evaluations, settings)
    with failing_as("cannot read the raw tables"):
        try:
            files = contract.data_files(fs, storage.strip_scheme(evaluations))
            if not files:
                raise Fail(f"no Parquet files at {evaluations}: land the raw evaluations there (docs/data_contract.md) "
                           "or set CHURN_RAW_EVALUATIONS")
            contract.check_files("evaluations", fs, files, contract.EVALUATIONS_SCHEMA)
            events = EVENTS.location(settings)
            present = set(storage.list_dir(events, settings))
            missing = [d for d in days if f"dt={d.isoformat()}" not in present]
            if missing:
                raise Fail(f"events: {len(missing)} of the last {len(days)} days have no partition under {events} "
                           f"({describe_days(missing)}); a day without events must still be an empty dt= folder")
            event_files = [f for d in days for f in contract.data_files(fs, storage.strip_scheme(join(events, f"dt={d}")))]
            contract.check_files("events", fs, event_files, contract.EVENTS_SCHEMA, contract.EVENTS_OPTIONAL)
        except contract.DataContractError as exc:
            raise Fail(f"{exc} (docs/data_contract.md)") from None
    return (f"evaluations ({len(files)} files) and events {days[0]}..{days[-1]} ({len(event_files)} files) "
            "match the contract")


def check_label_rate(settings: Settings, days: list[date]) -> str:
    """The raw label rate (converted within the label window, as instances_modeling defines it) of the trials of
    the last training window whose outcome is known, against CHURN_LABEL_RATE_RANGE: outside it, a first model
    would be held for a person, so say it before anything is trained."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from churn.core import contract, storage
    from churn.core.tables import EVALUATIONS

    path = EVALUATIONS.location(settings)
    fs = storage.filesystem(path, settings)
    last = days[-1] - timedelta(days=settings.label_window_days)  # the newest cohort with a known outcome
    first = last - timedelta(days=settings.training_window_days - 1)
    with failing_as(f"cannot read {path} (see the raw tables check)"):
        parts = []
        for file in contract.data_files(fs, storage.strip_scheme(path)):
            with fs.open(file, "rb") as handle:
                parts.append(pq.read_table(handle, columns=["eval_start_date", "converted_date"]))
        if not parts:
            raise Fail(f"no evaluations at {path} (see the raw tables check)")
        table = pa.concat_tables(parts, promote_options="permissive")
    start = pc.cast(table["eval_start_date"], pa.date32())
    converted = pc.cast(table["converted_date"], pa.date32())
    cohort = pc.and_(pc.greater_equal(start, pa.scalar(first, pa.date32())), pc.less_equal(start, pa.scalar(last, pa.date32())))
    window_end = pc.add(pc.cast(start, pa.int32()), settings.label_window_days)
    won = pc.and_kleene(pc.greater_equal(converted, start),
                        pc.less(pc.cast(converted, pa.int32()), window_end))
    n = pc.sum(pc.cast(cohort, pa.int64())).as_py() or 0
    if n == 0:
        return f"no trial started {first}..{last} (outcomes known by {days[-1]}): nothing to compare yet"
    rate = (pc.sum(pc.cast(pc.and_(cohort, pc.fill_null(won, False)), pa.int64())).as_py() or 0) / n
    low, high = settings.label_rate_bounds
    if not low <= rate <= high:
        raise Fail(f"the raw label rate is {rate:.3f} ({n:,} trials that started {first}..{last}), outside the "
                   f"plausible range {low}..{high}: a first model would be held for a person. If that is your "
                   f"product's real conversion rate, set CHURN_LABEL_RATE_RANGE around it (e.g. "
                   f"{max(0.0, rate - 0.15):.2f},{min(1.0, rate + 0.15):.2f}); else check converted_date upstream")
    return f"label rate {rate:.3f} of {n:,} trials that started {first}..{last}, within {low}..{high}"


def check_feature_config(settings: Settings, days: list[date]) -> str:
    """The configuration against the event types that actually arrived in the last days."""
    import pyarrow.parquet as pq

    from churn.core import contract, storage
    from churn.core.feature_config import FeatureConfigError, load_feature_config
    from churn.core.settings import join
    from churn.core.tables import EVENTS

    try:
        config = load_feature_config(settings)
    except FeatureConfigError as exc:
        raise Fail(str(exc)) from None
    events = EVENTS.location(settings)
    fs = storage.filesystem(events, settings)
    seen: Counter[str] = Counter()
    with failing_as(f"cannot read event types from {events}"):  # the raw-table check reports the details
        for day in days:
            for path in contract.data_files(fs, storage.strip_scheme(join(events, f"dt={day}"))):
                with fs.open(path, "rb") as handle:
                    seen.update(pq.read_table(handle, columns=["event_type"]).column(0).to_pylist())
    dead = [name for name, types in config.count_features.items() if not any(seen[t] for t in types)]
    unknown = {t: n for t, n in seen.items() if t not in config.known_event_types}
    where = f"{config.source}, last {len(days)} days"
    if not seen:
        raise Fail(f"no events in the {where} to compare the configuration with (see the raw tables check)")
    if dead:
        raise Fail(f"count feature(s) {', '.join(dead)} got no event in the {where}: their event types "
                   f"({', '.join(t for n in dead for t in config.count_features[n])}) never arrived; fix the types "
                   f"in the configuration (seen: {', '.join(t for t, _ in seen.most_common(8))})")
    share = sum(unknown.values()) / max(sum(seen.values()), 1)
    shown = ", ".join(f"{t}={n}" for t, n in Counter(unknown).most_common(3))
    return (f"{len(config.count_features)} count features all fed ({where}); {len(unknown)} unknown event types, "
            f"{share:.0%} of events, counted in w1_events only" + (f" ({shown})" if shown else ""))


def check_champion(settings: Settings) -> str:
    from churn.models.registry import Registry, RegistryError

    with failing_as("cannot read the registry"):
        try:
            _, metadata = Registry(settings).champion()
        except RegistryError as exc:
            raise Fail(str(exc)) from None
    auc = metadata.get("metrics", {}).get("roc_auc")
    return f"{metadata['version']} verified (checksums)" + (f", validation AUC {auc:.3f}" if auc else "")


def check_catalog(settings: Settings) -> str:
    """Glue database and tables in step with the DDL (glue), or the SQL catalog reachable (sql)."""
    from churn.core.glue import aws_client, matches_ddl
    from churn.core.iceberg_catalog import table_problems
    from churn.core.tables import TABLES
    from churn.core.warehouse import iceberg_schema, load_table

    fix = "run `churn catalog apply`"
    with failing_as(f"cannot read the {settings.table_catalog} catalog"):
        problems = table_problems(settings)  # a lost catalog, a copied warehouse: each with its repair
    if problems:
        raise Fail(problems[0] + (f" (and {len(problems) - 1} more tables alike)" if len(problems) > 1 else ""))
    stale, missing = [], []
    with failing_as(f"cannot read the {settings.table_catalog} catalog"):
        if settings.table_catalog == "glue":
            glue = aws_client("glue", settings)
            try:
                glue.get_database(Name=settings.athena_database)
            except glue.exceptions.EntityNotFoundException:
                raise Fail(f"Glue database {settings.athena_database} does not exist: {fix}") from None
            for name, t in TABLES.items():
                if not t.glue or t.published:
                    continue
                try:
                    existing = glue.get_table(DatabaseName=settings.athena_database, Name=name)["Table"]
                except glue.exceptions.EntityNotFoundException:
                    missing.append(name)
                    continue
                if not matches_ddl(existing, t, settings):
                    stale.append(name)
        for name, t in TABLES.items():
            if not t.published or not t.glue:
                continue
            table = load_table(name, settings)
            if table is None:
                if settings.table_catalog == "glue":  # Athena cannot query it before the first run
                    missing.append(name)
                continue
            wanted = {f.name for f in iceberg_schema(t, settings).fields}
            if not wanted <= {f.name for f in table.schema().fields}:
                stale.append(name)
    if missing or stale:
        parts = ([f"missing: {', '.join(missing)}"] if missing else []) + \
                ([f"differ from the DDL: {', '.join(stale)}"] if stale else [])
        raise Fail(f"{settings.athena_database}: {'; '.join(parts)}; {fix}")
    if settings.table_catalog == "glue":
        return f"Glue database {settings.athena_database}: every table matches the DDL"
    return "SQL Iceberg catalog reachable; existing tables have every column (tables are created on first write)"


def check_athena(settings: Settings) -> str:
    from churn.core import storage
    from churn.core.glue import aws_client

    with failing_as(f"workgroup {settings.athena_workgroup}", "create it or set CHURN_ATHENA_WORKGROUP"):
        group = aws_client("athena", settings).get_work_group(WorkGroup=settings.athena_workgroup)["WorkGroup"]
    if group.get("State") != "ENABLED":
        raise Fail(f"workgroup {settings.athena_workgroup} is {group.get('State')}: enable it")
    output = settings.athena_output or group.get("Configuration", {}).get("ResultConfiguration", {}).get("OutputLocation")
    if not output:
        raise Fail(f"no query result location: set CHURN_ATHENA_OUTPUT=s3://… or one in workgroup "
                   f"{settings.athena_workgroup}")
    bucket = storage.strip_scheme(output).split("/", 1)[0]
    with failing_as(f"result location {output} is not reachable"):
        storage.filesystem(output, settings).ls(bucket)
    return f"workgroup {settings.athena_workgroup} enabled, results to {output}"


def check_emr(settings: Settings) -> str:
    from churn.core import storage
    from churn.core.glue import aws_client

    with failing_as(f"application {settings.emr_application_id}", "check CHURN_EMR_APPLICATION_ID and CHURN_AWS_REGION"):
        app = aws_client("emr-serverless", settings).get_application(
            applicationId=settings.emr_application_id)["application"]
    if app.get("state") in ("TERMINATED", "STOPPING") or app.get("type", "SPARK").upper() != "SPARK":
        raise Fail(f"application {settings.emr_application_id} is a {app.get('type')} application in state "
                   f"{app.get('state')}: create a Spark application")
    paths = settings.emr_code_paths
    absent = [f"{key} {paths[key]}" for key in ("entry_point", "archive") if not storage.exists(paths[key], settings)]
    if absent:
        raise Fail(f"not uploaded: {', '.join(absent)}; run `make emr-bundle` and upload (dist/emr/upload.txt)")
    return f"application {app.get('name', '')} ({app.get('releaseLabel')}, {app.get('state')}); code and archive uploaded"


CHECK_NAMES = ("settings", "warehouse", "raw tables", "label rate", "feature configuration", "champion", "catalog",
               "athena", "emr serverless")


def run_checks(settings: Settings, days: list[date], report: Callable[[Check], None] = lambda c: None,
               only: set[str] | None = None) -> list[Check]:
    uses_aws = settings.table_catalog == "glue"
    checks: list[tuple[str, Callable[[], str] | str]] = [
        ("settings", lambda: check_settings(settings)),
        ("warehouse", lambda: check_warehouse(settings)),
        ("raw tables", lambda: check_raw_tables(settings, days)),
        ("label rate", lambda: check_label_rate(settings, days)),
        ("feature configuration", lambda: check_feature_config(settings, days)),
        ("champion", lambda: check_champion(settings)),
        ("catalog", lambda: check_catalog(settings)),
        ("athena", (lambda: check_athena(settings)) if uses_aws or settings.athena_output
         else "not used (CHURN_DEPLOYMENT=local, no CHURN_ATHENA_OUTPUT)"),
        ("emr serverless", (lambda: check_emr(settings)) if settings.spark_runner == "emr_serverless"
         else f"not used (CHURN_SPARK_RUNNER={settings.spark_runner})"),
    ]
    assert [name for name, _ in checks] == list(CHECK_NAMES)
    results = []
    for name, check in checks:
        if only and name not in only:
            continue
        if isinstance(check, str):
            result = Check(name, NOT_USED, check)
        else:
            try:
                result = Check(name, OK, check())
            except Fail as exc:
                result = Check(name, FAILED, str(exc))
            except Exception as exc:  # noqa: BLE001 - a check never stops the others
                log.debug("check %s", name, exc_info=True)
                reason = aws_problem(exc) or f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                result = Check(name, FAILED, f"{reason} (run with --verbose for the traceback)")
        results.append(result)
        report(result)
    return results
