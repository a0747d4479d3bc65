"""Model registry next to the data: versions, the champion / challenger aliases and a promotion history.

Layout under ``settings.models_path`` (a folder or ``s3://bucket/prefix/models/<name>``)::

    v=<version>/            model.ubj | model_linear.json, transform.json, pipeline.json, metrics.json,
                            report.html, validation_scores.parquet, metadata.json (written last)
    history/e<seq>.json     one immutable event per file, numbered 1, 2, 3 … (promote, rollback, challenger)

The history is the one source of truth: the champion and the challenger are derived from it, never
stored beside it. An event is appended by creating the next number *only if it does not exist* (an
exclusive create locally, a conditional ``If-None-Match: *`` put on S3), so one append is one atomic
step, and of two concurrent promotions exactly one gets the number: the other sees
:class:`ConcurrentUpdate`. A damaged event file is reported with the command that repairs it
(``churn models repair`` moves it aside); the champion is then uncertain until it is repaired or a new
event (``rollback --to``) settles it.

``metadata.json`` records the sha256 and size of every other artifact, and an event records the sha256
of the metadata it points at, so loading a model verifies the whole chain. Nothing is ever unpickled:
models are XGBoost UBJSON or JSON coefficients, transforms are JSON.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from datetime import UTC, datetime

from churn.core import storage
from churn.core.settings import Settings, join
from models.model import ChurnModel
from models.profile import PROFILE_FILE

log = logging.getLogger(__name__)

METADATA = "metadata.json"
ALIASES = ("champion", "challenger")


class RegistryError(RuntimeError):
    """Base class of registry errors; the message says which version and which file."""


class IntegrityError(RegistryError):
    """An artifact is missing, truncated or altered (its sha256 differs from the recorded one)."""


class NoChampion(RegistryError):
    """No model has been promoted to champion yet."""


class VersionNotFound(RegistryError):
    pass


class ConcurrentUpdate(RegistryError):
    """Another writer appended to the history first (a concurrent promotion won); nothing was changed."""


REPAIR_HINT = "run `churn models repair` (moves it aside) or settle the champion with `churn models rollback --to VERSION`"
EVENT = re.compile(r"^e(\d{8})\.json$")
CHAMPION_EVENTS = ("promote", "rollback")

def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Registry:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = self.settings.models_path
        # one filesystem object for every call: creating an S3 client per call costs ~0.1-0.8 s
        self.fs = storage.filesystem(self.root, self.settings)

    # ------------------------------------------------------------ paths
    def version_path(self, version: str) -> str:
        return join(self.root, f"v={version}")

    def artifact_path(self, version: str, name: str) -> str:
        return join(self.version_path(version), name)

    def _alias_path(self, alias: str) -> str:
        return join(self.root, "aliases", f"{alias}.json")

    # --------------------------------------------------------- versions
    def versions(self) -> list[str]:
        """Complete versions (with metadata.json), oldest first (version ids sort by run date)."""
        out = []
        for name in self._list(self.root):
            if name.startswith("v=") and self._exists(self.artifact_path(name[2:], METADATA)):
                out.append(name[2:])
        return sorted(out)

    def exists(self, version: str) -> bool:
        return self._exists(self.artifact_path(version, METADATA))

    def write_version(self, version: str, files: dict[str, bytes], metadata: dict) -> dict:
        """Write every artifact, then metadata.json (with their checksums) last: a version without
        metadata.json is incomplete and invisible."""
        if METADATA in files:
            raise ValueError("metadata.json is written by the registry")
        for name, data in sorted(files.items()):
            self._put(self.artifact_path(version, name), data)
        metadata = dict(metadata)
        metadata["artifacts"] = {name: {"sha256": sha256(data), "bytes": len(data)} for name, data in sorted(files.items())}
        self._put(self.artifact_path(version, METADATA), json.dumps(metadata, indent=1, sort_keys=True).encode())
        return metadata

    def metadata(self, version: str, expected_sha256: str | None = None) -> dict:
        path = self.artifact_path(version, METADATA)
        if not self._exists(path):
            if self._list(self.version_path(version)):
                raise IntegrityError(f"model version {version}: {path} is missing (incomplete or damaged version)")
            raise VersionNotFound(f"model version {version} does not exist under {self.root}")
        raw = self._read(path)
        if expected_sha256 and sha256(raw) != expected_sha256:
            raise IntegrityError(
                f"model version {version}: {path} has sha256 {sha256(raw)[:12]}…, the alias recorded "
                f"{expected_sha256[:12]}… (the metadata was altered after registration)"
            )
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise IntegrityError(f"model version {version}: {path} is not valid JSON ({exc})") from exc

    def read_artifact(self, version: str, name: str, metadata: dict | None = None) -> bytes:
        """Bytes of one artifact, verified against the sha256 and size recorded in metadata.json."""
        metadata = metadata or self.metadata(version)
        record = metadata.get("artifacts", {}).get(name)
        path = self.artifact_path(version, name)
        if record is None:
            raise IntegrityError(f"model version {version}: {name} is not a registered artifact")
        if not self._exists(path):
            raise IntegrityError(f"model version {version}: artifact {path} is missing")
        data = self._read(path)
        if len(data) != record["bytes"] or sha256(data) != record["sha256"]:
            what = "truncated" if len(data) < record["bytes"] else "altered"
            raise IntegrityError(
                f"model version {version}: artifact {path} is {what} — {len(data)} bytes with sha256 "
                f"{sha256(data)[:12]}…, registered {record['bytes']} bytes with sha256 {record['sha256'][:12]}…"
            )
        return data

    def verify(self, version: str, expected_sha256: str | None = None) -> dict:
        """Check every artifact of a version; returns its metadata or raises IntegrityError."""
        metadata = self.metadata(version, expected_sha256)
        for name in metadata.get("artifacts", {}):
            self.read_artifact(version, name, metadata)
        return metadata

    def load(self, version: str, expected_sha256: str | None = None) -> tuple[ChurnModel, dict]:
        """The model of a version, after verifying the checksum of every file it is built from."""
        metadata = self.metadata(version, expected_sha256)
        needed = [n for n in metadata.get("model_files", []) if n in metadata.get("artifacts", {})]
        if not needed or len(needed) != len(metadata.get("model_files", [])):
            raise IntegrityError(f"model version {version}: metadata.json does not list its model files")
        files = {name: self.read_artifact(version, name, metadata) for name in needed}
        try:
            model = ChurnModel.from_artifacts(files)
        except Exception as exc:  # checksums matched, so this is a bug or a foreign file
            raise IntegrityError(f"model version {version}: artifacts could not be loaded: {exc}") from exc
        if model.version != version:
            raise IntegrityError(f"model version {version}: pipeline.json belongs to version {model.version}")
        return model, metadata

    # ----------------------------------------------------- history (truth)
    def _history_dir(self) -> str:
        return join(self.root, "history")

    def _read_history(self) -> tuple[list[dict], list[str], int]:
        """(valid events by number, damaged file names, highest number in use)."""
        events, damaged, highest = [], [], 0
        folder = self._history_dir()
        for name in self._list(folder):
            match = EVENT.match(name)
            if not match:
                continue
            highest = max(highest, int(match.group(1)))
            try:
                entry = json.loads(self._read(join(folder, name)))
                if not isinstance(entry, dict) or entry.get("seq") != int(match.group(1)) or not entry.get("event") \
                        or not entry.get("version"):
                    raise ValueError("not an event of this registry")
            except (ValueError, TypeError, UnicodeDecodeError) as exc:
                damaged.append(f"{name} ({exc})")
                continue
            events.append(entry)
        return sorted(events, key=lambda e: e["seq"]), damaged, highest

    def history(self) -> list[dict]:
        return self._read_history()[0]

    def problems(self) -> list[str]:
        """Damaged history files, each with the way to repair it (``churn models list`` shows these)."""
        return [f"history file {join(self._history_dir(), d)} is damaged: {REPAIR_HINT}"
                for d in self._read_history()[1]]

    def _state(self) -> dict:
        events, damaged, highest = self._read_history()
        state: dict = {"champion": None, "challenger": None, "events": events, "damaged": damaged,
                       "highest": highest}
        for e in events:
            record = {"version": e["version"], "metadata_sha256": e.get("metadata_sha256"), "set_at": e["at"],
                      "reason": e.get("reason", ""), "seq": e["seq"]}
            if e["event"] in CHAMPION_EVENTS:
                state["champion"] = record
                if state["challenger"] and state["challenger"]["version"] == e["version"]:
                    state["challenger"] = None
            elif e["event"] == "challenger":
                state["challenger"] = record
        return state

    def alias(self, alias: str) -> dict | None:
        """``champion`` / ``challenger``: {"version", "metadata_sha256", "set_at", "reason"}, from the history."""
        if alias not in ALIASES:
            raise ValueError(f"unknown alias {alias!r}; use one of {ALIASES}")
        return self._state()[alias]

    def _append(self, event: str, version: str, state: dict | None = None, **details) -> dict:
        """Append one event as number ``highest + 1`` of the history read in ``state``; ConcurrentUpdate if taken."""
        state = state or self._state()
        raw = self._read(self.artifact_path(version, METADATA))
        entry = {"seq": state["highest"] + 1, "at": utc_now(), "event": event, "version": version,
                 "metadata_sha256": sha256(raw), **details}
        path = join(self._history_dir(), f"e{entry['seq']:08d}.json")
        if not self._create(path, json.dumps(entry, indent=1, sort_keys=True).encode()):
            raise ConcurrentUpdate(f"the model history changed while {event} {version} was being recorded "
                                   f"({path} exists: another promotion or training won); nothing was changed")
        return entry

    def reference_profile(self, version: str, metadata: dict | None = None) -> dict | None:
        """The verified drift reference profile stored at training time; None for versions trained before it existed."""
        metadata = metadata or self.metadata(version)
        if PROFILE_FILE not in metadata.get("artifacts", {}):
            return None
        return json.loads(self.read_artifact(version, PROFILE_FILE, metadata))

    def champion(self) -> tuple[ChurnModel, dict]:
        """The verified champion model, or NoChampion / IntegrityError with a clear message."""
        state = self._state()
        record = state["champion"]
        if state["damaged"] and (record is None or state["highest"] > record["seq"]):
            raise IntegrityError(f"the champion is uncertain: history file {state['damaged'][-1]} under "
                                 f"{self._history_dir()} is damaged; {REPAIR_HINT}")
        if record is None:
            raise NoChampion(
                f"no champion model under {self.root}: run `churn train --run-date D` (a model becomes "
                "champion when it clears the promotion floor) or `churn models promote VERSION`"
            )
        return self.load(record["version"], record["metadata_sha256"])

    # -------------------------------------------------------- promotion
    def promote(self, version: str, reason: str, event: str = "promote", by: str | None = None) -> dict:
        """Make a (verified) version champion in one atomic append; promoting the champion changes nothing.
        ``by`` records who (a person's user@host; absent for the weekly retrain's own decisions).

        Raises :class:`ConcurrentUpdate` when another event was appended since the history was read.
        """
        self.verify(version)
        state = self._state()
        current = state["champion"]
        if current and current["version"] == version:
            log.info("%s is already the champion: nothing to do", version)
            return {"event": "noop", "version": version, "reason": f"{version} is already the champion"}
        return self._append(event, version, state, reason=reason,
                            previous_champion=current["version"] if current else None, **({"by": by} if by else {}))

    def mark_challenger(self, version: str, reason: str, attempts: int = 5) -> dict:
        self.verify(version)
        for attempt in range(attempts):  # a challenger mark never conflicts in meaning: retry on a new number
            try:
                return self._append("challenger", version, reason=reason)
            except ConcurrentUpdate:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def rollback(self, to_version: str | None = None, reason: str | None = None, by: str | None = None) -> dict:
        """Champion := ``to_version``, or the champion that preceded the current one; ``reason`` and ``by`` are
        recorded with it."""
        state = self._state()
        current = state["champion"]
        if to_version is None:
            if state["damaged"]:
                raise IntegrityError(f"the history has damaged files ({state['damaged'][0]}): name the version, "
                                     "`churn models rollback --to VERSION`, or run `churn models repair`")
            if current is None:
                raise NoChampion(f"no champion under {self.root}: nothing to roll back")
            made = [e for e in state["events"] if e["event"] == "promote" and e["version"] == current["version"]
                    and e.get("previous_champion") and e["previous_champion"] != current["version"]]
            if not made:
                raise RegistryError(f"champion {current['version']} has no recorded predecessor to roll back to")
            to_version = made[-1]["previous_champion"]
        if current and to_version == current["version"] and not state["damaged"]:
            raise RegistryError(f"{to_version} is already the champion")
        self.verify(to_version)
        origin = f"rollback from {current['version'] if current else '?'}"
        return self._append("rollback", to_version, state, reason=f"{reason} ({origin})" if reason else origin,
                            previous_champion=current["version"] if current else None, **({"by": by} if by else {}))

    def repair(self) -> list[str]:
        """Move damaged history files to ``history/damaged/`` (kept for inspection); returns their names."""
        moved = []
        for entry in self._read_history()[1]:
            name = entry.split(" ", 1)[0]
            source, target = join(self._history_dir(), name), join(self._history_dir(), "damaged", name)
            self._put(target, self._read(source))
            self.fs.rm(storage.strip_scheme(source))
            moved.append(name)
        return moved

    # --------------------------------------------------------------- io
    def _exists(self, path: str) -> bool:
        self.fs.invalidate_cache()  # other writers (jobs, the CLI) may have changed the store since
        return self.fs.exists(storage.strip_scheme(path))

    def _read(self, path: str) -> bytes:
        return self.fs.cat_file(storage.strip_scheme(path))

    def _list(self, path: str) -> list[str]:
        bare = storage.strip_scheme(path)
        self.fs.invalidate_cache()
        if not self.fs.exists(bare):
            return []
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(bare, detail=False))

    def _create(self, path: str, data: bytes) -> bool:
        """Create ``path`` with ``data`` only if it does not exist (atomically); False if it exists."""
        if path.startswith("s3://"):
            import boto3
            from botocore.exceptions import ClientError

            bucket, key = path[len("s3://"):].split("/", 1)
            client = boto3.client("s3", region_name=self.settings.aws_region,
                                  endpoint_url=self.settings.s3_endpoint_url or None)
            try:
                client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                    return False
                raise
            return True
        tmp = _complete_temp_file(path, data)
        try:
            os.link(tmp, path)  # atomic, and fails if the name exists: a complete file or none
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    def _put(self, path: str, data: bytes) -> None:
        """Write one object; locally via a temporary file and rename so readers never see half a file."""
        if "://" in path:
            self.fs.pipe_file(storage.strip_scheme(path), data)
            return
        tmp = _complete_temp_file(path, data)
        try:
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def _complete_temp_file(path: str, data: bytes) -> str:
    """``data`` fully written to a hidden temporary file beside ``path`` (readable by other jobs)."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; other jobs (Airflow, Athena sync) read these
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def version_id(run_date, fingerprint: str) -> str:
    """``<run_date>-<first 8 hex of the training-data fingerprint>``: sorts by run date, same data -> same id."""
    return f"{run_date.isoformat()}-{fingerprint[:8]}"
