"""How an object the indexer keeps is named to a person.

The indexer keys objects by (cluster, namespace, name): the cluster is "" for a k8s_gateway with
one kubeconfig, and a Corefile with several names each cluster (its context, or the file's
name). Explanations print `namespace/name`, or `cluster/namespace/name` with several clusters.
"""

from __future__ import annotations

__all__ = ["object_namespace"]


def object_namespace(key: tuple[str, ...]) -> str:
    """The namespace part of an object's printed name: `cluster/namespace` where a cluster is named."""
    *cluster, namespace, _name = key
    return "/".join((*(c for c in cluster if c), namespace))
