"""DevCluster: the in-memory state of the dev API server.

Objects by resource, one global resourceVersion counter, a bounded change history (for watches that
resume from an RV) and the set of open watches, which get every change pushed synchronously. All methods
are sync and must run in the trio thread (they wake watch streams). Stored objects are never mutated:
each write stores a new dict.

Deviations from a real API server, on purpose: writing into a missing namespace creates it; `status` is
stored as given on create, update and patch (there is no controller to set it); server-side apply is a
merge patch without managedFields or conflicts.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import math
import secrets
import uuid
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
import yaml

from .errors import ApiError
from .faults import FaultPoints
from .kinds import KINDS, Kind
from .patch import json_patch, merge_patch, strategic_merge_patch

__all__ = ["Change", "DevCluster", "Watch"]

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
_PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")


@dataclass(frozen=True, slots=True)
class Change:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    kind: Kind
    obj: Obj
    old: Obj | None = None


class Watch:
    """One open watch stream's inbox; the cluster pushes every Change of its kind into it."""

    def __init__(self, kind: Kind, namespace: str | None) -> None:
        self.kind = kind
        self.namespace = namespace
        self._send, self.recv = trio.open_memory_channel[Change](math.inf)
        self.dropped = trio.Event()

    def push(self, change: Change) -> None:
        try:
            self._send.send_nowait(change)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    def drop(self) -> None:
        """Make the stream end abruptly: its receiver sees EndOfChannel."""
        self._send.close()
        self.dropped.set()


def dumps(obj: Any) -> bytes:
    """Compact JSON, as every response body is encoded."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _item_json(kind: Kind, obj: Obj) -> bytes:
    """An object as a list item at its stored version: built-in kinds' items lack kind/apiVersion."""
    if kind.builtin:
        return dumps({k: v for k, v in obj.items() if k not in ("kind", "apiVersion")})
    return dumps(obj)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _without_rv(obj: Obj) -> Obj:
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}}


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class DevCluster:
    """In-memory, Kubernetes-compatible state: serve it with `serve_devapi`.

    Args:
        groups: API groups to enable (the core group is always on); None enables every group in `kinds`.
        history_size: changes kept for watches resuming from a resourceVersion; older RVs get 410 Expired.
        bookmark_interval: seconds between BOOKMARK events on watches that allow them.
        faults: what the HTTP layer consults to fail on purpose; tests pass their switchboard
            (tests/support/faults.py), the default never fails.
    """

    def __init__(
        self,
        *,
        groups: Iterable[str] | None = None,
        history_size: int = 1000,
        bookmark_interval: float = 5.0,
        kinds: Iterable[Kind] = KINDS,
        faults: Callable[[Callable[[], int]], FaultPoints] = FaultPoints,
    ) -> None:
        self.kinds = tuple(kinds)
        self.enabled_groups = {k.group for k in self.kinds} if groups is None else set(groups) | {""}
        self.bookmark_interval = bookmark_interval
        self.token: str | None = None
        self.faults = faults(self._drop_watches)
        self._rv = 1
        self._compacted_rv = 0  # watches must start at an RV >= this
        self._history: deque[Change] = deque(maxlen=history_size)
        self._objects: dict[Kind, dict[tuple[str, str], Obj]] = {k: {} for k in self.kinds}
        # Sorted keys per kind, rebuilt after a create or delete: a list page is then a bisect and
        # a slice, not a sort of the whole kind (100 pages of 500 from 50,000 objects).
        self._sorted_keys: dict[Kind, list[tuple[str, str]] | None] = {k: None for k in self.kinds}
        # Each stored object's list-item JSON, encoded once when it is written: a page of a large
        # LIST is then a join of bytes, not an encoding of 500 objects per request (the encoding
        # was most of the server's time listing 100,000 objects).
        self._item_json: dict[Kind, dict[tuple[str, str], bytes]] = {k: {} for k in self.kinds}
        self._watches: set[Watch] = set()
        self._watches_changed = trio.Event()
        for name in _PROTECTED_NAMESPACES:
            self._ensure_namespace(name)

    # ---- public Python API -------------------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        return self._rv

    @property
    def watch_count(self) -> int:
        """Open watch streams (tests use it to see a client's disconnect noticed)."""
        return len(self._watches)

    async def wait_watch_count(self, minimum: int) -> None:
        """Wait until at least `minimum` watch streams are open (e.g. before `faults.drop_watches()`)."""
        while len(self._watches) < minimum:
            await self._watches_changed.wait()

    def _notify_watches_changed(self) -> None:
        self._watches_changed.set()
        self._watches_changed = trio.Event()

    @property
    def compacted_rv(self) -> int:
        return self._compacted_rv

    def set_token(self, token: str | None) -> None:
        """Require `Authorization: Bearer <token>` from now on (None: no auth)."""
        self.token = token

    def enable_group(self, group: str) -> None:
        """Serve `group` from now on (as if its CRDs were installed)."""
        self.enabled_groups.add(group)

    def disable_group(self, group: str) -> None:
        if group:
            self.enabled_groups.discard(group)

    def compact(self) -> None:
        """Forget the change history: watches and continue tokens from before now get 410 Expired."""
        self._history.clear()
        self._compacted_rv = self._rv

    def apply(self, obj: Obj) -> Obj:
        """Create or replace `obj` (like kubectl apply), keeping uid/creationTimestamp; no-op if unchanged."""
        kind = self.kind_of(obj.get("apiVersion", ""), obj.get("kind", ""))
        meta = obj.get("metadata") or {}
        namespace = (meta.get("namespace") or "default") if kind.namespaced else None
        name = meta.get("name", "")
        current = self._objects[kind].get((namespace or "", name))
        if current is None:
            return copy.deepcopy(self.create(kind, namespace, obj))
        if (
            _spec_part(current) == _spec_part(obj)
            and current.get("status") == obj.get("status")
            and all(current["metadata"].get(f) == meta.get(f) for f in ("labels", "annotations"))
        ):
            return copy.deepcopy(current)
        new = copy.deepcopy(obj)
        new.setdefault("metadata", {}).pop("resourceVersion", None)
        return copy.deepcopy(self.update(kind, namespace, name, new))

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> None:
        """Delete an object; raises ApiError 404 if it does not exist."""
        k = self.kind_of(api_version, kind)
        self.delete_object(k, (namespace or "default") if k.namespaced else None, name)

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj:
        k = self.kind_of(api_version, kind)
        return copy.deepcopy(self.get_object(k, (namespace or "default") if k.namespaced else None, name))

    def load_manifests(self, paths: Iterable[Path | str]) -> int:
        """Apply every object in YAML files (multi-doc, `kind: List` too); directories load *.yaml|yml|json.

        Returns the number of objects applied."""
        count = 0
        for path in paths:
            path = Path(path)
            files = (
                sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
                if path.is_dir()
                else [path]
            )
            for file in files:
                for doc in yaml.safe_load_all(file.read_text()):
                    if not doc:
                        continue
                    for item in doc.get("items", []) if doc.get("kind") == "List" else [doc]:
                        self.apply(item)
                        count += 1
        return count

    # ---- lookups -----------------------------------------------------------------------------------
    def kind_for(self, group: str, version: str, plural: str) -> Kind | None:
        for k in self.kinds:
            if (
                k.group == group
                and version in k.versions
                and k.plural == plural
                and group in self.enabled_groups
            ):
                return k
        return None

    def kind_of(self, api_version: str, kind: str) -> Kind:
        group, _, version = api_version.rpartition("/")
        for k in self.kinds:
            if k.group == group and version in k.versions and k.kind == kind:
                if group not in self.enabled_groups:
                    break
                return k
        raise ApiError(404, "NotFound", f'no matches for kind "{kind}" in version "{api_version}"')

    def served_kinds(self) -> list[Kind]:
        return [k for k in self.kinds if k.group in self.enabled_groups]

    def _not_found(self, kind: Kind, name: str) -> ApiError:
        return ApiError(
            404,
            "NotFound",
            f'{kind.resource} "{name}" not found',
            details={"name": name, "group": kind.group, "kind": kind.plural},
        )

    def get_object(self, kind: Kind, namespace: str | None, name: str) -> Obj:
        obj = self._objects[kind].get((namespace or "", name))
        if obj is None:
            raise self._not_found(kind, name)
        return obj

    def list_objects(
        self, kind: Kind, namespace: str | None, match: Callable[[Obj], bool] | None = None
    ) -> list[Obj]:
        return self.list_page(kind, namespace, match)[0]

    def list_page(
        self,
        kind: Kind,
        namespace: str | None,
        match: Callable[[Obj], bool] | None = None,
        *,
        after: tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> tuple[list[Obj], int]:
        """Objects in key order after `after`, at most `limit` (None: all), and how many keys follow."""
        objs = self._objects[kind]
        keys = self._sorted_keys[kind]
        if keys is None:
            keys = self._sorted_keys[kind] = sorted(objs)
        lo, hi = 0, len(keys)
        if namespace is not None:  # keys sort by (namespace, name): one namespace is one run
            lo, hi = bisect_left(keys, (namespace, "")), bisect_right(keys, (namespace, "\U0010ffff"))
        if after is not None:
            lo = max(lo, bisect_right(keys, after))
        out: list[Obj] = []
        for position in range(lo, hi):
            obj = objs[keys[position]]
            if match is None or match(obj):
                if limit is not None and len(out) == limit:
                    return out, hi - position
                out.append(obj)
        return out, 0

    def item_json(self, kind: Kind, obj: Obj) -> bytes:
        """`obj` (as list_page returns it) as a list item at its stored version, encoded."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if self._objects[kind].get(key) is obj:
            return self._item_json[kind][key]
        return _item_json(kind, obj)  # not the stored object (a dry run, a deleted one)

    # ---- writes ------------------------------------------------------------------------------------
    def create(self, kind: Kind, namespace: str | None, obj: Any, *, dry_run: bool = False) -> Obj:
        new = self._prepare(kind, namespace, obj)
        meta = new["metadata"]
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
            else:
                raise ApiError(
                    422,
                    "Invalid",
                    f'{kind.kind} "" is invalid: metadata.name: Required value: name or generateName is required',
                    details={
                        "kind": kind.kind,
                        "group": kind.group,
                        "causes": [
                            {
                                "reason": "FieldValueRequired",
                                "field": "metadata.name",
                                "message": "Required value: name or generateName is required",
                            }
                        ],
                    },
                )
        key = (meta.get("namespace", ""), meta["name"])
        if key in self._objects[kind]:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{kind.resource} "{meta["name"]}" already exists',
                details={"name": meta["name"], "group": kind.group, "kind": kind.plural},
            )
        for field_name in ("resourceVersion", "deletionTimestamp", "selfLink"):
            meta.pop(field_name, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta["generation"] = 1
        if kind.empty_status is not None:
            new.setdefault("status", copy.deepcopy(dict(kind.empty_status)))
        if kind.kind == "Namespace":
            new.setdefault("spec", {"finalizers": ["kubernetes"]})
            new.setdefault("status", {"phase": "Active"})
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        if dry_run:
            return new
        if kind.namespaced:
            self._ensure_namespace(key[0])
        return self._commit(kind, "ADDED", new, None)

    def update(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        obj: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """PUT semantics: a stale metadata.resourceVersion is 409 Conflict; `/status` takes only status."""
        current = self.get_object(kind, namespace, name)
        new = self._prepare(kind, namespace, obj)
        meta = new["metadata"]
        if meta.get("name", name) != name:
            raise ApiError(
                400,
                "BadRequest",
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})",
            )
        rv = meta.get("resourceVersion")
        if rv not in (None, "") and rv != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {kind.resource} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
                details={"name": name, "group": kind.group, "kind": kind.plural},
            )
        if subresource == "status":
            new = {**current, "status": new.get("status")}
            if new["status"] is None:
                del new["status"]
            new["metadata"] = dict(current["metadata"])
        else:
            for field_name in ("uid", "creationTimestamp", "generation", "namespace", "name"):
                if field_name in current["metadata"]:
                    meta[field_name] = current["metadata"][field_name]
            meta.pop("resourceVersion", None)
            if _spec_part(new) != _spec_part(current):
                meta["generation"] = current["metadata"].get("generation", 1) + 1
        if dry_run:
            return new
        if _without_rv(new) == _without_rv(current):  # a no-op write keeps the RV and emits nothing
            return current
        return self._commit(kind, "MODIFIED", new, current)

    def patch(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        content_type: str,
        body: Any,
        *,
        subresource: str | None = None,
        field_manager: str | None = None,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """Apply a PATCH; returns (object, created). Apply patches create missing objects."""
        if content_type == "application/apply-patch+yaml":
            if not field_manager:
                raise ApiError(
                    422,
                    "Invalid",
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                    "is required for apply patch",
                    details={
                        "group": "meta.k8s.io",
                        "kind": "PatchOptions",
                        "causes": [
                            {
                                "reason": "FieldValueRequired",
                                "field": "fieldManager",
                                "message": "Required value: is required for apply patch",
                            }
                        ],
                    },
                )
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "apply patch must be an object")
            if (namespace or "", name) not in self._objects[kind]:
                if subresource:
                    raise self._not_found(kind, name)
                body = {**body, "metadata": {**(body.get("metadata") or {}), "name": name}}
                return self.create(kind, namespace, body, dry_run=dry_run), True
        current = self.get_object(kind, namespace, name)
        base = {k: v for k, v in current.items()}
        if content_type == "application/json-patch+json":
            patched = json_patch(base, body)
        elif content_type == "application/strategic-merge-patch+json":
            patched = strategic_merge_patch(base, body, kind.merge_keys)
        elif content_type in ("application/merge-patch+json", "application/apply-patch+yaml"):
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "merge patch must be an object")
            patched = merge_patch(base, body)
        else:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, "
                f"application/strategic-merge-patch+json (got {content_type!r})",
            )
        if not isinstance(patched, dict):
            raise ApiError(422, "Invalid", "patch result is not an object")
        patched_meta = dict(patched.get("metadata") or {})
        patch_rv = ((body if isinstance(body, dict) else {}).get("metadata") or {}).get("resourceVersion")
        patched_meta["resourceVersion"] = patch_rv if patch_rv else current["metadata"]["resourceVersion"]
        patched["metadata"] = patched_meta
        return self.update(kind, namespace, name, patched, subresource=subresource, dry_run=dry_run), False

    def delete_object(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        *,
        precondition_rv: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        current = self.get_object(kind, namespace, name)
        if precondition_rv and precondition_rv != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {kind.resource} "{name}": Precondition failed: '
                f"ResourceVersion in precondition: {precondition_rv}, "
                f"ResourceVersion in object meta: {current['metadata']['resourceVersion']}",
            )
        if kind.kind == "Namespace" and name in _PROTECTED_NAMESPACES:
            raise ApiError(
                403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not be deleted'
            )
        if dry_run:
            return current
        if kind.kind == "Namespace":  # cascade at once; there is no namespace controller
            for other in self.kinds:
                if other.namespaced:
                    for key in [key for key in self._objects[other] if key[0] == name]:
                        self._remove(other, key)
        return self._remove(kind, (namespace or "", name))

    # ---- watches -----------------------------------------------------------------------------------
    def open_watch(self, kind: Kind, namespace: str | None, since: int | None) -> tuple[list[Change], Watch]:
        """Register a watch. `since` None: the backlog is the current state as ADDED changes;
        `since` N: the history after N (410 Expired if N is older than the history)."""
        if since is None:
            backlog = [Change(self._rv, "ADDED", kind, obj) for obj in self.list_objects(kind, namespace)]
        else:
            if since < self._compacted_rv:
                raise ApiError(410, "Expired", f"too old resource version: {since} ({self._compacted_rv})")
            backlog = [c for c in self._history if c.rv > since and c.kind == kind]
            if namespace is not None:
                backlog = [c for c in backlog if c.obj["metadata"].get("namespace") == namespace]
        watch = Watch(kind, namespace)
        self._watches.add(watch)
        self._notify_watches_changed()
        return backlog, watch

    def close_watch(self, watch: Watch) -> None:
        self._watches.discard(watch)
        self._notify_watches_changed()

    def _drop_watches(self) -> int:
        watches, self._watches = self._watches, set()
        self._notify_watches_changed()
        for watch in watches:
            watch.drop()
        return len(watches)

    # ---- internals ---------------------------------------------------------------------------------
    def _prepare(self, kind: Kind, namespace: str | None, obj: Any) -> Obj:
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        if obj.get("kind") not in (None, "", kind.kind):
            raise ApiError(
                400, "BadRequest", f"the kind {obj.get('kind')!r} does not match {kind.kind!r} on the URL"
            )
        new = copy.deepcopy(obj)
        new["apiVersion"] = kind.group_version()
        new["kind"] = kind.kind
        meta = new.get("metadata")
        if meta is None:
            meta = new["metadata"] = {}
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        if kind.namespaced:
            namespace = namespace or "default"
            if meta.get("namespace") not in (None, "", namespace):
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        meta.pop("managedFields", None)
        return new

    def _ensure_namespace(self, name: str) -> None:
        ns_kind = (
            self.kinds[0]
            if self.kinds[0].kind == "Namespace"
            else next(k for k in self.kinds if k.kind == "Namespace")
        )
        if ("", name) not in self._objects[ns_kind]:
            self.create(ns_kind, None, {"metadata": {"name": name}})

    def _remove(self, kind: Kind, key: tuple[str, str]) -> Obj:
        current = self._objects[kind][key]
        last = {**current, "metadata": dict(current["metadata"])}
        return self._commit(kind, "DELETED", last, current)

    def _commit(self, kind: Kind, event: str, obj: Obj, old: Obj | None) -> Obj:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if event == "DELETED":
            del self._objects[kind][key]
            del self._item_json[kind][key]
            self._sorted_keys[kind] = None
        else:
            if key not in self._objects[kind]:
                self._sorted_keys[kind] = None
            self._objects[kind][key] = obj
            self._item_json[kind][key] = _item_json(kind, obj)
        change = Change(self._rv, event, kind, obj, old)
        if self._history.maxlen is not None and len(self._history) == self._history.maxlen and self._history:
            self._compacted_rv = self._history[0].rv
        self._history.append(change)
        for watch in list(self._watches):
            if watch.kind == kind:
                watch.push(change)
        logger.debug("%s %s %s/%s rv=%d", event, kind.kind, key[0], key[1], self._rv)
        return obj

    def iter_history(self) -> Iterator[Change]:
        return iter(self._history)
