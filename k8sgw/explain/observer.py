"""AvailabilityObserver: the watchers' observer, plus which kinds the API cannot give and why.

It passes every call on to the observer it wraps (the metrics') and keeps the kinds that are not
served (CRD absent) or forbidden (RBAC), with the rule to add, in the store's `unavailable`, so
/explain says why a kind in `resources` has no objects. `k8sgw explain` words its own list
failures with the same functions.
"""

from __future__ import annotations

from k8sgw.kubeapi.kinds import Kind
from k8sgw.kubeapi.watch import WatchObserver, rbac_rule
from k8sgw.records.store import RecordStore

__all__ = ["AvailabilityObserver", "absent_reason", "forbidden_reason"]


def absent_reason(kind: Kind) -> str:
    """Why a kind none of whose versions is served has no objects."""
    served = " or ".join(kind.at_version(v).api_version for v in kind.versions)
    return f"the API does not serve {kind.resource} ({served}): CRD not installed"


def forbidden_reason(kind: Kind) -> str:
    """Why a kind RBAC forbids has no objects, and the rule to add."""
    return f"RBAC forbids listing {kind.resource}; add the ClusterRole rule {rbac_rule(kind)}"


class AvailabilityObserver:
    def __init__(self, store: RecordStore, inner: WatchObserver) -> None:
        self._store = store
        self._inner = inner

    def event_seen(self, kind: str) -> None:
        self._inner.event_seen(kind)

    def watch_restarted(self, kind: str) -> None:
        self._inner.watch_restarted(kind)

    def relisted(self, kind: str) -> None:
        self._inner.relisted(kind)

    def kind_unavailable(self, kind: Kind, problem: str | None) -> None:
        if problem is None:
            self._store.unavailable.pop(kind.name, None)
        else:
            self._store.unavailable[kind.name] = forbidden_reason(kind) if problem == "forbidden" else absent_reason(kind)
        self._inner.kind_unavailable(kind, problem)
