"""Frozen configuration models: what a Corefile means, once parsed and checked.

Every value here is already validated and normalised by ``directives``: zones are
absolute, lower-case and end in a dot; kinds are canonical; paths are absolute. Code
that reads a ``Config`` never re-checks it. Nothing here reads files or the network.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from k8sgw.kubeapi.kinds import CLAIMING_KINDS

if TYPE_CHECKING:  # the directive modules import this one; the properties need only the names
    from k8sgw.config.dnsplugins import CacheConfig, ForwardConfig
    from k8sgw.config.ops import HealthConfig, LogConfig, PrometheusConfig, ReadyConfig, ReloadConfig
    from k8sgw.config.transfer import TransferConfig, TsigConfig

__all__ = [
    "DEFAULT_RESOURCES",
    "NODE_ADDRESS_TYPES",
    "OPT_IN_RESOURCES",
    "SUPPORTED_RESOURCES",
    "Config",
    "GatewayConfig",
    "KubeconfigRef",
    "ServerBlock",
    "ServerKey",
]

SUPPORTED_RESOURCES: tuple[str, ...] = CLAIMING_KINDS
"""Kinds ``resources`` accepts, in ownership order (kubeapi/kinds.py is their one home)."""

OPT_IN_RESOURCES = ("IngressRoute", "IngressRouteTCP", "VirtualService", "IstioGateway", "Node")
"""Kinds watched only when ``resources`` names them: Nodes only name themselves when asked to; an
upgrade from k8s_gateway must answer the names it answered (an Istio Gateway's ``*.example.org``
host, common, would claim every name of the zone the day k8sgw started reading it)."""

DEFAULT_RESOURCES: tuple[str, ...] = tuple(k for k in SUPPORTED_RESOURCES if k not in OPT_IN_RESOURCES)
"""Kinds watched without ``resources``."""

NODE_ADDRESS_TYPES = ("InternalIP", "ExternalIP")

_FROZEN = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class ServerKey(BaseModel):
    """One server block key, ``ZONE[:PORT]``."""

    model_config = _FROZEN

    zone: str
    """Absolute, lower-case, with a trailing dot: ``"."`` for the root, ``"example.com."``."""
    port: Annotated[int, Field(ge=0, le=65535)]
    """UDP and TCP port; ``-dns.port`` (53 unless given) when the key has none. 0 = any free
    port, chosen at bind time (tests and the dev runner use it)."""


class KubeconfigRef(BaseModel):
    """The ``kubeconfig FILE [CONTEXT]`` option."""

    model_config = _FROZEN

    path: str
    """Absolute: a relative FILE is taken relative to the Corefile's directory; ``~`` expands."""
    context: str | None = None
    """Context to use; ``None`` = the file's current-context."""

    @property
    def cluster(self) -> str:
        """The cluster's name in logs, /ready and metrics: CONTEXT if given, else FILE's name
        without its extension."""
        return self.context or os.path.splitext(os.path.basename(self.path))[0]


class GatewayConfig(BaseModel):
    """One ``k8s_gateway`` directive."""

    model_config = _FROZEN

    zones: tuple[str, ...]
    """Zones answered from Kubernetes objects; absolute, lower-case. Default: the block's zones."""
    resources: tuple[str, ...] = DEFAULT_RESOURCES
    """Kinds to watch, canonical names in ``SUPPORTED_RESOURCES`` order."""
    ttl: Annotated[int, Field(ge=0, le=3600)] = 60
    """TTL in seconds of non-apex answers; k8s_gateway caps it at 3600 (one hour)."""
    apex: str = "dns1.kube-system"
    """Relative name (no trailing dot, lower-case) of the nameserver host ``<apex>.<zone>``;
    also ``name.namespace`` of the Service whose addresses it owns."""
    secondary: str | None = None
    """Second nameserver host, same form as ``apex``; ``None`` = only one NS."""
    kubeconfig: KubeconfigRef | None = None
    """The first ``kubeconfig`` line; ``None`` = in-cluster, else ``$KUBECONFIG`` / ``~/.kube/config``."""
    clusters: tuple[KubeconfigRef, ...] = ()
    """With two or more ``kubeconfig`` lines, every one, a cluster each, in order; ``()`` = one
    cluster, ``kubeconfig``'s."""
    fallthrough: tuple[str, ...] | None = None
    """``None`` = off; ``()`` = all of ``zones``; else these zones, each one of or inside ``zones``."""
    ingress_classes: tuple[str, ...] = ()
    """Only Ingresses of these classes; ``()`` = all."""
    gateway_classes: tuple[str, ...] = ()
    """Only routes of Gateways of these GatewayClasses; ``()`` = all."""
    service_label_selectors: tuple[str, ...] = ()
    """Kubernetes label selectors, one string each (``"app=web,tier in (a,b)"``); ``()`` = all."""
    traefik_service: str | None = None
    """``traefikService NAMESPACE/NAME``: the Service in front of Traefik, whose addresses
    IngressRoutes without a target annotation answer with; ``None`` = none."""
    node_address_type: str = "InternalIP"
    """``nodeAddressType``: which of a Node's ``status.addresses`` it answers with (one of
    ``NODE_ADDRESS_TYPES``)."""
    line: int
    """Corefile line of the ``k8s_gateway`` directive."""


class ServerBlock(BaseModel):
    """One server block: the keys it serves and its directives."""

    model_config = _FROZEN

    keys: tuple[ServerKey, ...]
    bind: tuple[str, ...] = ()
    """IP addresses to listen on (normalised text form); ``()`` = all addresses."""
    gateway: GatewayConfig | None = None
    plugins: dict[str, Any] = {}
    """Other directives by name (forward, cache, health, ...): each one's frozen model."""
    line: int
    """Corefile line of the block's first key."""

    def plugin(self, name: str) -> Any:
        """The parsed directive `name` of this block, or None when absent (the typed properties
        below say the same with their model's type: code reads those)."""
        return self.plugins.get(name)

    @property
    def forward(self) -> ForwardConfig | None:
        return self.plugins.get("forward")

    @property
    def cache(self) -> CacheConfig | None:
        return self.plugins.get("cache")

    @property
    def transfer(self) -> TransferConfig | None:
        return self.plugins.get("transfer")

    @property
    def tsig(self) -> TsigConfig | None:
        return self.plugins.get("tsig")

    @property
    def loadbalance(self) -> bool:
        return "loadbalance" in self.plugins

    @property
    def loop(self) -> bool:
        return "loop" in self.plugins

    @property
    def log(self) -> LogConfig | None:
        return self.plugins.get("log")

    @property
    def errors(self) -> bool:
        return "errors" in self.plugins

    @property
    def health(self) -> HealthConfig | None:
        return self.plugins.get("health")

    @property
    def ready(self) -> ReadyConfig | None:
        return self.plugins.get("ready")

    @property
    def prometheus(self) -> PrometheusConfig | None:
        return self.plugins.get("prometheus")

    @property
    def reload(self) -> ReloadConfig | None:
        return self.plugins.get("reload")

    @property
    def zones(self) -> tuple[str, ...]:
        """Distinct zones of ``keys``, in order."""
        return tuple(dict.fromkeys(key.zone for key in self.keys))


class Config(BaseModel):
    """A whole Corefile."""

    model_config = _FROZEN

    filename: str
    """As given to ``load``/``parse_corefile``; used in messages."""
    servers: tuple[ServerBlock, ...]
