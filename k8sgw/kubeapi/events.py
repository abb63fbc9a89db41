"""What the watchers tell the indexer, over a trio memory channel.

A watcher owns nothing but its resourceVersion; the indexer owns the objects. Synced replaces every
object of its kind at once (first list and every relist after 410), so objects deleted while the
watch was down vanish with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from k8sgw.kubeapi.models import KubeObject

__all__ = ["Deleted", "KubeEvent", "SyncPage", "Synced", "Upserted"]


@dataclass(frozen=True, slots=True)
class Synced:
    """A complete list of one kind (with the SyncPages since the first page): replaces all objects of
    that kind; marks the kind ready."""

    kind: str
    objects: tuple[KubeObject, ...]
    resource_version: str = ""
    """The list's resourceVersion ("" when unknown, e.g. a kind that is not served)."""
    history_replaced: bool = False
    """The API server was replaced since the kind's last list (its resourceVersions went back):
    what was seen before says nothing about the new history, so SOA serials cannot follow it."""


@dataclass(frozen=True, slots=True)
class SyncPage:
    """One page of a list in progress; the Synced that ends the list completes it.

    Sending pages as they arrive keeps one page of objects in memory instead of a whole kind
    (25,000 models at a time in a large cluster). Objects of the kind that none of the pages, nor
    the final Synced, contained are removed when the Synced arrives.
    """

    kind: str
    objects: tuple[KubeObject, ...]
    first: bool


@dataclass(frozen=True, slots=True)
class Upserted:
    """An object was added or modified (watch ADDED/MODIFIED)."""

    kind: str
    obj: KubeObject


@dataclass(frozen=True, slots=True)
class Deleted:
    """An object is gone (watch DELETED)."""

    kind: str
    namespace: str
    name: str
    resource_version: str = ""
    """The resourceVersion of the deletion (the DELETED event's object)."""


KubeEvent = Synced | SyncPage | Upserted | Deleted
