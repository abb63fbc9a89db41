"""ObjectIndex: the objects the indexer holds, and which depend on which.

Only objects something re-translates from are kept whole (Gateways, EndpointSlices, routes, the
nameserver Services, Services that resolve their endpoints, Traefik's and Istio's objects, the
Traefik Service and, while Istio Gateways are watched, every Service with a spec.selector); for
the rest the key is enough, their claims are kept elsewhere: at 50,000 objects that is most of
the memory. Reverse indexes say what a change re-translates: a Gateway change the routes that name
it, an EndpointSlice change the one Service it belongs to, a Service change the Istio Gateways
whose selector picks it (found through one of its selector labels, not by scanning Gateways) and
their VirtualServices, an Istio Gateway change the VirtualServices that name it, a change of the
Traefik Service every IngressRoute.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, TypeVar, cast

from k8sgw.kubeapi.kinds import ISTIO_KINDS, ROUTE_KINDS, TRAEFIK_KINDS
from k8sgw.kubeapi.models import (
    EndpointSlice,
    Gateway,
    IstioGateway,
    KubeObject,
    Route,
    Service,
    VirtualService,
)
from k8sgw.records.istio import gateway_refs, selects
from k8sgw.records.settings import ObjectKey
from k8sgw.records.sources import Related, route_gateway_keys, slice_service_key, wants_endpoints

__all__ = ["TRANSLATED", "Dependent", "ObjectIndex"]


class _Translated:
    """Stands for an object whose claims are kept and which nothing re-translates from."""

    def __repr__(self) -> str:
        return "TRANSLATED"


TRANSLATED: Final = _Translated()
Dependent = tuple[str, ObjectKey]  # (kind, key) of an object to re-translate
Label = tuple[str, str]  # one key=value of a selector
_K = TypeVar("_K")


class ObjectIndex:
    """Objects by kind and key, with the reverse indexes of the kinds that feed others."""

    def __init__(
        self, kinds: Iterable[str], nameserver_services: frozenset[ObjectKey], traefik_service: ObjectKey | None = None
    ) -> None:
        self._objects: dict[str, dict[ObjectKey, KubeObject | _Translated]] = {k: {} for k in kinds}
        self._nameserver_services = nameserver_services
        self._traefik_service = traefik_service if any(k in self._objects for k in TRAEFIK_KINDS) else None
        self._istio = "IstioGateway" in self._objects
        self._services_by_label: dict[Label, set[ObjectKey]] = {}  # kept Services by each selector label
        self._istio_gateways_by_label: dict[Label, set[ObjectKey]] = {}  # by the first label of their selector
        self._label_of_istio_gateway: dict[ObjectKey, Label] = {}
        self._virtualservices_by_gateway: dict[ObjectKey, set[ObjectKey]] = {}
        self._gateways_of_virtualservice: dict[ObjectKey, frozenset[ObjectKey]] = {}
        self._routes_by_gateway: dict[ObjectKey, set[Dependent]] = {}
        self._gateways_of_route: dict[Dependent, frozenset[ObjectKey]] = {}
        self._slices_by_service: dict[ObjectKey, set[ObjectKey]] = {}
        self._service_of_slice: dict[ObjectKey, ObjectKey] = {}
        gateways = cast("Mapping[ObjectKey, Gateway]", self._objects.get("Gateway", {}))  # always kept whole
        services = self._objects.get("Service", {})
        self.related = Related(
            gateways,
            _SlicesOf(self._objects.get("EndpointSlice", {}), self._slices_by_service),
            cast("Mapping[ObjectKey, IstioGateway]", self._objects.get("IstioGateway", {})),  # kept whole
            _SelectedServices(services, self._services_by_label),
            _ServiceOf(services),
        )

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
        elif kind == "Service":
            return [(kind, key), *self._service_dependents(key, old, obj)]
        elif kind == "IstioGateway":
            self._index_istio_gateway(key, obj)
            if _istio_gateway_view(old) != _istio_gateway_view(obj):
                return [(kind, key), *(("VirtualService", v) for v in self._virtualservices_by_gateway.get(key, ()))]
        elif kind == "VirtualService":
            self._index_virtualservice(key, obj)
        return [(kind, key)]

    def _retained(self, kind: str, key: ObjectKey, obj: KubeObject) -> bool:
        if isinstance(obj, Service):
            return (
                key in self._nameserver_services  # glue
                or wants_endpoints(obj)  # EndpointSlices join it
                or key == self._traefik_service
                or (self._istio and bool(obj.spec.selector))  # an Istio Gateway's selector may pick it
            )
        return kind in ("Gateway", "EndpointSlice") or kind in ROUTE_KINDS or kind in TRAEFIK_KINDS or kind in ISTIO_KINDS

    def _service_dependents(
        self, key: ObjectKey, old: KubeObject | _Translated | None, obj: KubeObject | None
    ) -> list[Dependent]:
        """What reads a Service besides itself: the Traefik routes if it is the Traefik Service,
        the Istio Gateways whose selector picks it (before or after) and their VirtualServices."""
        old_service = old if isinstance(old, Service) else None
        new_service = obj if isinstance(obj, Service) and self._objects["Service"].get(key) is obj else None
        if _front_view(old_service) == _front_view(new_service):
            return []
        out: list[Dependent] = []
        if key == self._traefik_service:
            out.extend((k, r) for k in TRAEFIK_KINDS if k in self._objects for r in self._objects[k])
        if not self._istio:
            return out
        self._index_service_labels(key, old_service, new_service)
        gateways = cast("Mapping[ObjectKey, IstioGateway]", self._objects["IstioGateway"])
        candidates: set[ObjectKey] = set()
        for service in (old_service, new_service):
            if service is not None:
                for label in service.spec.selector.items():
                    candidates.update(self._istio_gateways_by_label.get(label, ()))
        for gw_key in candidates:
            gw = gateways.get(gw_key)
            if gw is None or not any(s is not None and selects(gw.spec.selector, s) for s in (old_service, new_service)):
                continue
            out.append(("IstioGateway", gw_key))
            out.extend(("VirtualService", v) for v in self._virtualservices_by_gateway.get(gw_key, ()))
        return out

    def _index_service_labels(self, key: ObjectKey, old: Service | None, new: Service | None) -> None:
        old_labels = set(old.spec.selector.items()) if old is not None else set()
        new_labels = set(new.spec.selector.items()) if new is not None else set()
        for label in old_labels - new_labels:
            _discard(self._services_by_label, label, key)
        for label in new_labels - old_labels:
            self._services_by_label.setdefault(label, set()).add(key)

    def _index_istio_gateway(self, key: ObjectKey, obj: KubeObject | None) -> None:
        # One label of the selector is enough: a Service it picks has every one of them.
        old = self._label_of_istio_gateway.pop(key, None)
        new = min(obj.spec.selector.items()) if isinstance(obj, IstioGateway) and obj.spec.selector else None
        if old is not None and old != new:
            _discard(self._istio_gateways_by_label, old, key)
        if new is not None:
            self._istio_gateways_by_label.setdefault(new, set()).add(key)
            self._label_of_istio_gateway[key] = new

    def _index_virtualservice(self, key: ObjectKey, obj: KubeObject | None) -> None:
        old = self._gateways_of_virtualservice.pop(key, frozenset())
        new = gateway_refs(obj) if isinstance(obj, VirtualService) else frozenset()
        for gw in old - new:
            _discard(self._virtualservices_by_gateway, gw, key)
        for gw in new - old:
            self._virtualservices_by_gateway.setdefault(gw, set()).add(key)
        if new:
            self._gateways_of_virtualservice[key] = new

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


class _SelectedServices:
    """Related.selected_services: the kept Services an Istio Gateway's selector picks, found
    through the index of its rarest label (not by scanning every Service)."""

    def __init__(self, services: dict[ObjectKey, KubeObject | _Translated], by_label: dict[Label, set[ObjectKey]]) -> None:
        self._services = services
        self._by_label = by_label

    def __call__(self, selector: Mapping[str, str]) -> list[Service]:
        if not selector:
            return []
        keys = min((self._by_label.get(label, set()) for label in selector.items()), key=len)
        found = (self._services.get(k) for k in sorted(keys))
        return [s for s in found if isinstance(s, Service) and selects(selector, s)]


class _ServiceOf:
    """Related.service: a kept Service by key."""

    def __init__(self, services: dict[ObjectKey, KubeObject | _Translated]) -> None:
        self._services = services

    def __call__(self, key: ObjectKey) -> Service | None:
        found = self._services.get(key)
        return found if isinstance(found, Service) else None


def _discard(index: dict[_K, set[ObjectKey]], at: _K, key: ObjectKey) -> None:
    keys = index.get(at)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[at]


def _front_view(obj: Service | None) -> object:
    """What of a Service Istio Gateways and Traefik routes read."""
    return (obj.spec.selector, obj.spec.external_ips, obj.status.load_balancer) if obj is not None else None


def _istio_gateway_view(obj: KubeObject | _Translated | None) -> object:
    """What of an Istio Gateway its VirtualServices read."""
    if not isinstance(obj, IstioGateway):
        return None
    return (obj.metadata.labels, obj.metadata.annotations, obj.spec)


def _gateway_view(obj: KubeObject | _Translated | None) -> object:
    """What of a Gateway routes read (not its resourceVersion): a change here re-translates them."""
    if not isinstance(obj, Gateway):
        return None
    return (obj.metadata.labels, obj.metadata.annotations, obj.spec, obj.status)  # annotations: its target


def _slice_view(obj: KubeObject | _Translated | None) -> object:
    return (obj.metadata.labels, obj.address_type, obj.endpoints) if isinstance(obj, EndpointSlice) else None
