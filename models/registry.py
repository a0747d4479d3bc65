"""Model registry next to the data: versions, the champion / challenger aliases and a promotion history.

Layout under ``settings.models_path`` (a folder or ``s3://bucket/prefix/models/<name>``)::

    v=<version>/            model.ubj | model_linear.json, transform.json, pipeline.json, metrics.json,
                            report.html, validation_scores.parquet, metadata.json (written last)
    aliases/champion.json   {"version", "metadata_sha256", "set_at", "reason"}
    aliases/challenger.json
    history/<utc time>-<id>.json   one immutable object per event (append-only, also on S3)

``metadata.json`` records the sha256 and size of every other artifact, and an alias records the
sha256 of the metadata it points at, so loading a model verifies the whole chain. Nothing is ever
unpickled: models are XGBoost UBJSON or JSON coefficients, transforms are JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from datetime import UTC, datetime

from churn.core import storage
from churn.core.settings import Settings, join
from models.model import ChurnModel
from models.profile import PROFILE_FILE

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

    # ---------------------------------------------------------- aliases
    def alias(self, alias: str) -> dict | None:
        path = self._alias_path(alias)
        if not self._exists(path):
            return None
        try:
            record = json.loads(self._read(path))
            record["version"], record["metadata_sha256"]  # noqa: B018 - required keys
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"alias file {path} is damaged ({exc!r})") from exc
        return record

    def set_alias(self, alias: str, version: str, reason: str) -> dict:
        if alias not in ALIASES:
            raise ValueError(f"unknown alias {alias!r}; use one of {ALIASES}")
        raw = self._read(self.artifact_path(version, METADATA))
        record = {"version": version, "metadata_sha256": sha256(raw), "set_at": utc_now(), "reason": reason}
        self._put(self._alias_path(alias), json.dumps(record, indent=1).encode())
        return record

    def clear_alias(self, alias: str) -> None:
        path = self._alias_path(alias)
        if self._exists(path):
            self.fs.rm(storage.strip_scheme(path))

    def reference_profile(self, version: str, metadata: dict | None = None) -> dict | None:
        """The verified drift reference profile stored at training time; None for versions trained before it existed."""
        metadata = metadata or self.metadata(version)
        if PROFILE_FILE not in metadata.get("artifacts", {}):
            return None
        return json.loads(self.read_artifact(version, PROFILE_FILE, metadata))

    def champion(self) -> tuple[ChurnModel, dict]:
        """The verified champion model, or NoChampion / IntegrityError with a clear message."""
        record = self.alias("champion")
        if record is None:
            raise NoChampion(
                f"no champion model under {self.root}: run `churn train --run-date D` (a model becomes "
                "champion when it clears the promotion floor) or `churn models promote VERSION`"
            )
        return self.load(record["version"], record["metadata_sha256"])

    # ---------------------------------------------------------- history
    def record_event(self, event: str, version: str, **details) -> dict:
        entry = {"at": utc_now(), "event": event, "version": version, **details}
        name = f"{entry['at'].replace(':', '').replace('-', '')}-{uuid.uuid4().hex[:8]}.json"
        self._put(join(self.root, "history", name), json.dumps(entry, indent=1, sort_keys=True).encode())
        return entry

    def history(self) -> list[dict]:
        folder = join(self.root, "history")
        return [json.loads(self._read(join(folder, n)))
                for n in self._list(folder) if n.endswith(".json")]

    # -------------------------------------------------------- promotion
    def promote(self, version: str, reason: str, event: str = "promote") -> dict:
        """Make a (verified) version champion; the previous champion is recorded for rollback."""
        self.verify(version)
        previous = self.alias("champion")
        self.set_alias("champion", version, reason)
        challenger = self.alias("challenger")
        if challenger and challenger["version"] == version:
            self.clear_alias("challenger")
        return self.record_event(event, version, reason=reason,
                                 previous_champion=previous["version"] if previous else None)

    def mark_challenger(self, version: str, reason: str) -> dict:
        self.set_alias("challenger", version, reason)
        return self.record_event("challenger", version, reason=reason)

    def rollback(self, to_version: str | None = None) -> dict:
        """Champion := ``to_version``, or the champion that preceded the current one."""
        current = self.alias("champion")
        if current is None:
            raise NoChampion(f"no champion under {self.root}: nothing to roll back")
        if to_version is None:
            made = [e for e in self.history() if e["event"] == "promote"
                    and e["version"] == current["version"] and e.get("previous_champion")]
            if not made:
                raise RegistryError(f"champion {current['version']} has no recorded predecessor to roll back to")
            to_version = made[-1]["previous_champion"]
        if to_version == current["version"]:
            raise RegistryError(f"{to_version} is already the champion")
        return self.promote(to_version, f"rollback from {current['version']}", event="rollback")

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

    def _put(self, path: str, data: bytes) -> None:
        """Write one object; locally via a temporary file and rename so readers never see half a file."""
        if "://" in path:
            self.fs.pipe_file(storage.strip_scheme(path), data)
            return
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; other jobs (Airflow, Athena sync) read these
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def version_id(run_date, fingerprint: str) -> str:
    """``<run_date>-<first 8 hex of the training-data fingerprint>``: sorts by run date, same data -> same id."""
    return f"{run_date.isoformat()}-{fingerprint[:8]}"
