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

import json
import logging

from churn.core.settings import Settings
from churn.models.model import ChurnModel
from churn.models.profile import PROFILE_FILE
from churn.models.version_store import (  # noqa: F401 - the registry's errors, importable from here
    METADATA,
    REPAIR_HINT,
    ConcurrentUpdate,
    IntegrityError,
    RegistryError,
    VersionNotFound,
    VersionStore,
    sha256,
    utc_now,
)

log = logging.getLogger(__name__)

ALIASES = ("champion", "challenger")
CHAMPION_EVENTS = ("promote", "rollback")
ANY_CHAMPION = object()  # promote(): no compare-and-swap on the current champion


class NoChampion(RegistryError):
    """No model has been promoted yet."""


class Registry:
    """The models of ``settings.model_name``: a :class:`VersionStore` whose history says who is champion."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = settings.models_path
        self.store = VersionStore(self.root, settings, what="model version")

    # what a caller reads of a version: the store's, verified
    def version_path(self, version: str) -> str:
        return self.store.version_path(version)

    def artifact_path(self, version: str, name: str) -> str:
        return self.store.artifact_path(version, name)

    def versions(self) -> list[str]:
        return self.store.versions()

    def exists(self, version: str) -> bool:
        return self.store.exists(version)

    def write_version(self, version: str, files: dict[str, bytes], metadata: dict) -> dict:
        return self.store.write_version(version, files, metadata)

    def metadata(self, version: str, expected_sha256: str | None = None) -> dict:
        return self.store.metadata(version, expected_sha256)

    def read_artifact(self, version: str, name: str, metadata: dict | None = None) -> bytes:
        return self.store.read_artifact(version, name, metadata)

    def verify(self, version: str, expected_sha256: str | None = None) -> dict:
        return self.store.verify(version, expected_sha256)

    def history(self) -> list[dict]:
        return self.store.history()

    def problems(self) -> list[str]:
        """Damaged history files, each with the way to repair it (``churn models list`` shows these)."""
        return self.store.problems()

    def repair(self) -> list[str]:
        """Move damaged history files to ``history/damaged/`` (kept for inspection); returns their names."""
        return self.store.repair()

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

    # ----------------------------------------------------- champion and challenger
    def _state(self) -> dict:
        events, damaged, highest, _ = self.store.read_history()  # out-of-sequence files are no part of it
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
        """Append one event after the history read in ``state``; ConcurrentUpdate if another writer was first."""
        return self.store.append(event, version, (state or self._state())["highest"], **details)

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
                                 f"{self.store.history_dir} is damaged; {REPAIR_HINT}")
        if record is None:
            raise NoChampion(
                f"no champion model under {self.root}: run `churn train --run-date D` (a model becomes "
                "champion when it clears the promotion floor) or `churn models promote VERSION`"
            )
        return self.load(record["version"], record["metadata_sha256"])

    # -------------------------------------------------------- promotion
    def promote(self, version: str, reason: str, event: str = "promote", by: str | None = None,
                expected_champion: str | None | object = ANY_CHAMPION) -> dict:
        """Make a (verified) version champion in one atomic append; promoting the champion changes nothing.
        ``by`` records who (a person's user@host; absent for the weekly retrain's own decisions).
        ``expected_champion`` (a version, or None for "no champion yet") makes it a compare-and-swap: a decision
        judged against one champion must not replace another (nor become the first over a first that won).

        Raises :class:`ConcurrentUpdate` when another event was appended since the history was read, or the
        champion is not the expected one.
        """
        self.verify(version)
        state = self._state()
        current = state["champion"]
        if expected_champion is not ANY_CHAMPION and (current or {}).get("version") != expected_champion:
            raise ConcurrentUpdate(f"the champion is {current['version'] if current else 'none'}, not "
                                   f"{expected_champion or 'none'} as when {version} was judged; nothing was changed")
        if current and current["version"] == version:
            log.info("%s is already the champion: nothing to do", version)
            return {"event": "noop", "version": version, "reason": f"{version} is already the champion"}
        entry = self._append(event, version, state, reason=reason,
                             previous_champion=current["version"] if current else None, **({"by": by} if by else {}))
        self._require_champion(version)
        return entry

    def _require_champion(self, version: str) -> None:
        """After an append: the history must now say ``version`` is champion (never report a change that did not
        happen)."""
        after = self._state()
        if (after["champion"] or {}).get("version") != version:
            raise RegistryError(f"recorded {version} as champion, but the history under {self.store.history_dir} "
                                f"still says {(after['champion'] or {}).get('version', 'none')}"
                                + (f" ({after['damaged'][0]})" if after["damaged"] else "") + f"; {REPAIR_HINT}")

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
        entry = self._append("rollback", to_version, state, reason=f"{reason} ({origin})" if reason else origin,
                             previous_champion=current["version"] if current else None, **({"by": by} if by else {}))
        self._require_champion(to_version)
        return entry


def version_id(run_date, fingerprint: str) -> str:
    """``<run_date>-<first 8 hex of the training-data fingerprint>``: sorts by run date, same data -> same id."""
    return f"{run_date.isoformat()}-{fingerprint[:8]}"
