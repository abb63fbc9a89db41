"""TCPRoute and UDPRoute: routes without spec.hostnames, named by hostname annotations.

external-dns's rule: a TCPRoute or UDPRoute has no hostnames in its spec, so its names come from
the `external-dns.alpha.kubernetes.io/hostname` annotation (k8sgw also reads
`coredns.io/hostname` first, as it does for Services): a comma list of fully qualified host names.
Everything else is the other routes' rule (parents, sectionName, Accepted, the listener's
hostname narrowing them, the Gateway's addresses): the annotation's names simply take the place
of spec.hostnames. A route with neither takes its listeners' hostnames, as any route does.
"""

from __future__ import annotations

from collections.abc import Sequence

from k8sgw.kubeapi.models import KubeObject, Route

__all__ = ["annotation_hostnames", "with_annotation_hostnames"]


def annotation_hostnames(obj: KubeObject, keys: Sequence[str]) -> tuple[str, ...]:
    """The entries of the first non-empty annotation of keys, trimmed (checked by the route rule)."""
    annotations = obj.metadata.annotations
    raw = next((annotations[a] for a in keys if annotations.get(a, "").strip()), "")
    return tuple(entry.strip() for entry in raw.split(",") if entry.strip())


def with_annotation_hostnames(obj: Route, keys: Sequence[str]) -> Route:
    """The route as the shared route rule reads it: its annotation's names as spec.hostnames."""
    names = annotation_hostnames(obj, keys)
    if not names:
        return obj
    return obj.model_copy(update={"spec": obj.spec.model_copy(update={"hostnames": names})})
