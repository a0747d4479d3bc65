"""Outreach policy versions next to the data, with the model registry's guarantees.

Under ``{warehouse}/outreach/policy``: ``v=<version>/state.json`` (every arm's posterior, JSON: nothing is
ever unpickled) and ``metadata.json`` (its sha256, written last), and the append-only ``history/`` of
``learn`` events (one atomic exclusive create each, the sha256 of the metadata recorded). The current policy
is the version of the last event; loading verifies the whole chain.
"""

from __future__ import annotations

import json

from churn.core.settings import Settings, join
from churn.models.outreach import PolicyState
from churn.models.version_store import IntegrityError, VersionStore, sha256, utc_now

STATE = "state.json"


def policy_path(settings: Settings) -> str:
    return join(settings.warehouse, "outreach", "policy")


class PolicyRegistry:
    """The outreach policy's versions: a :class:`VersionStore` whose last ``learn`` event is the current policy."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = policy_path(settings)
        self.store = VersionStore(self.root, settings, what="policy version")

    def history(self) -> list[dict]:
        return self.store.history()

    def current(self) -> tuple[PolicyState, dict] | None:
        """The policy of the last history event (verified), or None before the first outcomes were learned."""
        events = self.history()
        if not events:
            return None
        return self.load(events[-1]["version"], events[-1].get("metadata_sha256"))

    def load(self, version: str, expected_sha256: str | None = None) -> tuple[PolicyState, dict]:
        """One version's policy, verified (against the history's record of it when ``expected_sha256`` is not
        given): what a rerun of a past day's assignment reproduces."""
        if expected_sha256 is None:
            recorded = [e.get("metadata_sha256") for e in self.history() if e["version"] == version]
            expected_sha256 = recorded[-1] if recorded else None
        metadata = self.store.metadata(version, expected_sha256)
        try:
            state = PolicyState.from_json(json.loads(self.store.read_artifact(version, STATE, metadata)))
        except (ValueError, KeyError) as exc:
            raise IntegrityError(f"policy version {version}: {STATE} does not hold a policy ({exc})") from exc
        return state, metadata

    def record(self, state: PolicyState, learned_day: str, parent: str | None) -> str:
        """Write a new version of ``state`` and append it to the history; returns its id."""
        data = json.dumps(state.to_json(), sort_keys=True).encode()
        version = f"{learned_day}-{sha256(data)[:8]}"
        if not self.store.exists(version):
            self.store.write_version(version, {STATE: data}, {"version": version, "learned_day": learned_day,
                                                        "parent": parent, "created": utc_now(),
                                                        "batches": state.batches, "outcomes": state.outcomes})
        self.store.append("learn", version, learned_day=learned_day, parent=parent)
        return version
