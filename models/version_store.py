"""Versions with checksums and an append-only history of events: what the model and the policy registries share.

Layout under ``root`` (a folder or ``s3://…``)::

    v=<version>/            the version's files, then metadata.json (their sha256 and size, written last)
    history/e<seq>.json     one immutable event per file, numbered 1, 2, 3 …

An event is appended by creating the next number *only if it does not exist* (an exclusive create locally,
a conditional ``If-None-Match: *`` put on S3), so one append is one atomic step and of two concurrent
writers exactly one gets the number: the other sees :class:`ConcurrentUpdate`. Every event records the
sha256 of the metadata it points at, so reading a version through the history verifies the whole chain.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime

from churn.core import storage
from churn.core.settings import Settings, join

METADATA = "metadata.json"
EVENT = re.compile(r"^e(\d{8,})\.json$")
EVENT_NAME = "e{:08d}.json"
REPAIR_HINT = "run `churn models repair` (moves it aside) or settle the champion with `churn models rollback --to VERSION`"


class RegistryError(RuntimeError):
    """A registry problem a person must act on; the message says what and how."""


class IntegrityError(RegistryError):
    """A stored file is missing, truncated or altered against its recorded checksum."""


class VersionNotFound(RegistryError):
    """No such version."""


class ConcurrentUpdate(RegistryError):
    """Another writer appended the history event number this one wanted; nothing was changed."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class VersionStore:
    """Versions (files + verified metadata) and the numbered history of one registry root."""

    def __init__(self, root: str, settings: Settings, what: str = "model version"):
        self.root, self.settings, self.what = root, settings, what
        # one filesystem object for every call: creating an S3 client per call costs ~0.1-0.8 s
        self.fs = storage.filesystem(root, settings)

    # ------------------------------------------------------------ paths
    def version_path(self, version: str) -> str:
        return join(self.root, f"v={version}")

    def artifact_path(self, version: str, name: str) -> str:
        return join(self.version_path(version), name)

    @property
    def history_dir(self) -> str:
        return join(self.root, "history")

    # --------------------------------------------------------- versions
    def versions(self) -> list[str]:
        """Complete versions (with metadata.json), oldest first (version ids sort by date)."""
        names = storage.fresh_list(self.fs, self.root)
        return sorted(n[2:] for n in names if n.startswith("v=") and self.exists(n[2:]))

    def exists(self, version: str) -> bool:
        return storage.fresh_exists(self.fs, self.artifact_path(version, METADATA))

    def write_version(self, version: str, files: dict[str, bytes], metadata: dict) -> dict:
        """Write every file, then metadata.json (with their checksums) last: a version without metadata.json is
        incomplete and invisible."""
        if METADATA in files:
            raise ValueError("metadata.json is written by the registry")
        for name, data in sorted(files.items()):
            storage.put_atomic(self.fs, self.artifact_path(version, name), data)
        metadata = dict(metadata)
        metadata["artifacts"] = {name: {"sha256": sha256(data), "bytes": len(data)} for name, data in sorted(files.items())}
        storage.put_atomic(self.fs, self.artifact_path(version, METADATA),
                           json.dumps(metadata, indent=1, sort_keys=True).encode())
        return metadata

    def metadata(self, version: str, expected_sha256: str | None = None) -> dict:
        path = self.artifact_path(version, METADATA)
        if not storage.fresh_exists(self.fs, path):
            if storage.fresh_list(self.fs, self.version_path(version)):
                raise IntegrityError(f"{self.what} {version}: {path} is missing (incomplete or damaged version)")
            raise VersionNotFound(f"{self.what} {version} does not exist under {self.root}")
        raw = self.read(path)
        if expected_sha256 and sha256(raw) != expected_sha256:
            raise IntegrityError(f"{self.what} {version}: {path} has sha256 {sha256(raw)[:12]}…, the history recorded "
                                 f"{expected_sha256[:12]}… (the metadata was altered after registration)")
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise IntegrityError(f"{self.what} {version}: {path} is not valid JSON ({exc})") from exc

    def read_artifact(self, version: str, name: str, metadata: dict | None = None) -> bytes:
        """Bytes of one file, verified against the sha256 and size recorded in metadata.json."""
        metadata = metadata or self.metadata(version)
        record = metadata.get("artifacts", {}).get(name)
        path = self.artifact_path(version, name)
        if record is None:
            raise IntegrityError(f"{self.what} {version}: {name} is not a registered artifact")
        if not storage.fresh_exists(self.fs, path):
            raise IntegrityError(f"{self.what} {version}: artifact {path} is missing")
        data = self.read(path)
        if len(data) != record["bytes"] or sha256(data) != record["sha256"]:
            what = "truncated" if len(data) < record["bytes"] else "altered"
            raise IntegrityError(
                f"{self.what} {version}: artifact {path} is {what} — {len(data)} bytes with sha256 "
                f"{sha256(data)[:12]}…, registered {record['bytes']} bytes with sha256 {record['sha256'][:12]}…")
        return data

    def verify(self, version: str, expected_sha256: str | None = None) -> dict:
        """Check every file of a version; returns its metadata or raises IntegrityError."""
        metadata = self.metadata(version, expected_sha256)
        for name in metadata.get("artifacts", {}):
            self.read_artifact(version, name, metadata)
        return metadata

    # ----------------------------------------------------------- history
    def read_history(self) -> tuple[list[dict], list[str], int, list[str]]:
        """(valid events by number, damaged file names with why, the number the history ends at, out-of-sequence
        file names with why).

        Numbers follow on one by one from 1 (a number moved aside by :meth:`repair` still counts as taken): a file
        numbered past a gap is out of sequence and damaged, so an odd number (e99999999) can neither hide the
        events after it nor end the history somewhere appends cannot follow."""
        events: dict[int, dict] = {}
        damaged: list[tuple[int, str]] = []
        names: dict[int, str] = {}
        for name in storage.fresh_list(self.fs, self.history_dir):
            match = EVENT.match(name)
            if not match:
                continue
            seq = int(match.group(1))
            if seq in names:  # e00000005.json and e000000005.json: the second is not an event of its own
                damaged.append((seq, f"{name} (a second file numbered {seq})"))
                continue
            names[seq] = name
            try:
                entry = json.loads(self.read(join(self.history_dir, name)))
                if not isinstance(entry, dict) or entry.get("seq") != seq or not entry.get("event") \
                        or not entry.get("version"):
                    raise ValueError("not an event of this registry")
            except (ValueError, TypeError, UnicodeDecodeError) as exc:
                damaged.append((seq, f"{name} ({exc})"))
                continue
            events[seq] = entry
        moved = {int(m.group(1)) for n in storage.fresh_list(self.fs, join(self.history_dir, "damaged"))
                 if (m := EVENT.match(n))}
        end = 0
        while end + 1 in names or end + 1 in moved:
            end += 1
        stray = [f"{names[seq]} (numbered {seq}, but the history ends at {end}: event numbers follow on one by one)"
                 for seq in sorted(s for s in names if s > end)]  # never part of the history, damaged or not
        return ([events[s] for s in sorted(events) if s <= end], [text for seq, text in sorted(damaged) if seq <= end],
                end, stray + [text for seq, text in sorted(damaged) if seq > end])

    def history(self) -> list[dict]:
        return self.read_history()[0]

    def problems(self) -> list[str]:
        """Damaged history files, each with the way to repair it."""
        _, damaged, _, stray = self.read_history()
        return [f"history file {join(self.history_dir, d)} is damaged: {REPAIR_HINT}" for d in damaged + stray]

    def append(self, event: str, version: str, highest: int | None = None, **details) -> dict:
        """Append one event as number ``highest + 1`` (default: of the history as it is now); ConcurrentUpdate if
        another writer took that number."""
        if highest is None:
            highest = self.read_history()[2]
        raw = self.read(self.artifact_path(version, METADATA))
        entry = {"seq": highest + 1, "at": utc_now(), "event": event, "version": version,
                 "metadata_sha256": sha256(raw), **details}
        path = join(self.history_dir, EVENT_NAME.format(entry["seq"]))
        if not storage.create_exclusive(self.fs, path, json.dumps(entry, indent=1, sort_keys=True).encode(),
                                        self.settings):
            raise ConcurrentUpdate(f"the history changed while {event} {version} was being recorded "
                                   f"({path} exists: another promotion or training won); nothing was changed")
        return entry

    def repair(self) -> list[str]:
        """Move damaged history files to ``history/damaged/`` (kept for inspection); returns their names."""
        moved = []
        _, damaged, _, stray = self.read_history()
        for entry in damaged + stray:
            name = entry.split(" ", 1)[0]
            source, target = join(self.history_dir, name), join(self.history_dir, "damaged", name)
            storage.put_atomic(self.fs, target, self.read(source))
            self.fs.rm(storage.strip_scheme(source))
            moved.append(name)
        return moved

    def read(self, path: str) -> bytes:
        return self.fs.cat_file(storage.strip_scheme(path))
