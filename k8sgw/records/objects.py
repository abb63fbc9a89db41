"""ObjectIndex: the objects the indexer holds, and which depend on which.

Only objects something re-translates from are kept whole (Gateways, EndpointSlices, routes, the
nameserver Services, Services that resolve their endpoints); for the rest the key is enough, their
claims are kept elsewhere: at 50,000 objects that is most of the memory. Reverse indexes say what
a change re-translates: a Gateway change the routes that name it, an EndpointSlice change the one
Service it belongs to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, cast

from k8sgw.kubeapi.kinds import ROUTE_KINDS
from k8sgw.kubeapi.models import EndpointSlice, Gateway, KubeObject, Route, Service
from k8sgw.records.settings import ObjectKey
from k8sgw.records.sources import Related, route_gateway_keys, slice_service_key, wants_endpoints

__all__ = ["TRANSLATED", "Dependent", "ObjectIndex"]


class _Translated:
    """Stands for an object whose claims are kept and which nothing re-translates from."""

    def __repr__(self) -> str:
        return "TRANSLATED"


TRANSLATED: Final = _Translated()
Dependent = tuple[str, ObjectKey]  # (kind, key) of an object to re-translate


class ObjectIndex:
    """Objects by kind and key, with the reverse indexes of the kinds that feed others."""

    def __init__(self, kinds: Iterable[str], nameserver_services: frozenset[ObjectKey]) -> None:
        self._objects: dict[str, dict[ObjectKey, KubeObject | _Translated]] = {k: {} for k in kinds}
        self._nameserver_services = nameserver_services
        self._routes_by_gateway: dict[ObjectKey, set[Dependent]] = {}
        self._gateways_of_route: dict[Dependent, frozenset[ObjectKey]] = {}
        self._slices_by_service: dict[ObjectKey, set[ObjectKey]] = {}
        self._service_of_slice: dict[ObjectKey, ObjectKey] = {}
        gateways = cast("Mapping[ObjectKey, Gateway]", self._objects.get("Gateway", {}))  # always kept whole
        self.related = Related(gateways, _SlicesOf(self._objects.get("EndpointSlice", {}), self._slices_by_service))

    def __contains__(self, kind: str) -> bool:
        return kind in self._objects

    def count(self, kind: str) -> int:
        return len(self._objects[kind])

    def keys(self, kind: str) -> list[ObjectKey]:
        return list(self._objects[kind])

    def get(self, kind: str, key: ObjectKey) -> KubeObject | _Translated | None:
        return self._objects[kind].get(key)

    def service(self, key: ObjectKey) -> Service | None:
        obj = self._objects.get("Service", {}).get(key)
        return obj if isinstance(obj, Service) else None

    def put(self, kind: str, key: ObjectKey, obj: KubeObject | None) -> list[Dependent]:
        """Store (or, for None, drop) one object; returns the objects to re-translate because of it
        (itself included, for a claiming kind)."""
        objects = self._objects[kind]
        old = objects.get(key)
        if obj is None:
            objects.pop(key, None)
        else:
            objects[key] = obj if self._retained(kind, key, obj) else TRANSLATED
        if kind == "Gateway":
            if _gateway_view(old) != _gateway_view(obj):
                return list(self._routes_by_gateway.get(key, ()))
            return []
        if kind == "EndpointSlice":
            self._index_slice(key, obj)
            if _slice_view(old) == _slice_view(obj):
                return []
            services = {slice_service_key(o) for o in (old, obj) if isinstance(o, EndpointSlice)}
            return [("Service", s) for s in services if s is not None]
        if kind in ROUTE_KINDS:
            self._index_route(kind, key, obj)
        return [(kind, key)]

    def _retained(self, kind: str, key: ObjectKey, obj: KubeObject) -> bool:
        if isinstance(obj, Service):
            return key in self._nameserver_services or wants_endpoints(obj)  # glue; EndpointSlice joins
        return kind in ("Gateway", "EndpointSlice") or kind in ROUTE_KINDS

    def _index_route(self, kind: str, key: ObjectKey, obj: KubeObject | None) -> None:
        route = (kind, key)
        old = self._gateways_of_route.pop(route, frozenset())
        new = route_gateway_keys(obj) if isinstance(obj, Route) else frozenset()
        for gw in old - new:
            routes = self._routes_by_gateway[gw]
            routes.discard(route)
            if not routes:
                del self._routes_by_gateway[gw]
        for gw in new - old:
            self._routes_by_gateway.setdefault(gw, set()).add(route)
        if new:
            self._gateways_of_route[route] = new

    def _index_slice(self, key: ObjectKey, obj: KubeObject | None) -> None:
        old = self._service_of_slice.pop(key, None)
        new = slice_service_key(obj) if isinstance(obj, EndpointSlice) else None
        if old is not None and old != new:
            slices = self._slices_by_service[old]
            slices.discard(key)
            if not slices:
                del self._slices_by_service[old]
        if new is not None:
            self._slices_by_service.setdefault(new, set()).add(key)
            self._service_of_slice[key] = new


class _SlicesOf:
    """Related.endpoint_slices: the slices of a Service, read from the index's own dicts (not a
    bound method of the index, which would keep a reference cycle through Related)."""

    def __init__(self, slices: dict[ObjectKey, KubeObject | _Translated], by_service: dict[ObjectKey, set[ObjectKey]]) -> None:
        self._slices = slices
        self._by_service = by_service

    def __call__(self, service: ObjectKey) -> list[EndpointSlice]:
        found = (self._slices.get(k) for k in self._by_service.get(service, ()))
        return [s for s in found if isinstance(s, EndpointSlice)]


def _gateway_view(obj: KubeObject | _Translated | None) -> object:
    """What of a Gateway routes read (not its resourceVersion): a change here re-translates them."""
    return (obj.metadata.labels, obj.spec, obj.status) if isinstance(obj, Gateway) else None


def _slice_view(obj: KubeObject | _Translated | None) -> object:
    return (obj.metadata.labels, obj.address_type, obj.endpoints) if isinstance(obj, EndpointSlice) else None
