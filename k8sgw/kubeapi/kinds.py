"""The kinds k8sgw can watch: where each lives in the API and which model reads it.

One row per kind; a new kind is a model in models.py plus a row here. Versions are fixed for now;
Gateway API kinds will need them chosen from discovery (TLSRoute moved to v1 in Gateway API 1.5,
KUBEAPI §4.4), which is why `Kind` is a value and not a constant baked into the watcher.
"""

from __future__ import annotations

from dataclasses import dataclass

from k8sgw.kubeapi.models import Ingress, KubeObject, Service

__all__ = ["INGRESS", "KINDS", "SERVICE", "Kind"]


@dataclass(frozen=True)
class Kind:
    """One watchable resource.

    Attributes:
        name: the Kind as the Corefile's `resources` and the events name it ("Ingress").
        group: API group; "" for the core group.
        version: API version within the group ("v1").
        plural: the resource name in URLs ("ingresses").
        model: the KubeObject subclass items are validated into.
    """

    name: str
    group: str
    version: str
    plural: str
    model: type[KubeObject]

    @property
    def api_version(self) -> str:
        """ "networking.k8s.io/v1", or "v1" for the core group."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """plural.group as RBAC rules and kubectl name it ("ingresses.networking.k8s.io", "services")."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def collection_path(self, namespace: str | None = None) -> str:
        """The collection URL path; all namespaces unless `namespace` is given."""
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if namespace:
            prefix = f"{prefix}/namespaces/{namespace}"
        return f"{prefix}/{self.plural}"


INGRESS = Kind("Ingress", "networking.k8s.io", "v1", "ingresses", Ingress)
SERVICE = Kind("Service", "", "v1", "services", Service)

KINDS: dict[str, Kind] = {kind.name: kind for kind in (INGRESS, SERVICE)}
