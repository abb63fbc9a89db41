"""Directive meaning: generic server blocks → checked, normalised config models.

One function per directive and per ``k8s_gateway`` option, each raising ``ConfigError``
with the line of the offending word. Every directive CoreDNS has but k8sgw does not is
an error, never silently skipped: a Corefile that relies on ``cache`` or ``forward``
must not start and behave differently.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from typing import Any

import dns.exception
import dns.name

from k8sgw.arpa import reverse_zone_problem
from k8sgw.config.lexer import Token
from k8sgw.config.models import (
    NODE_ADDRESS_TYPES,
    SUPPORTED_RESOURCES,
    Config,
    GatewayConfig,
    KubeconfigRef,
    ServerBlock,
    ServerKey,
)
from k8sgw.config.parser import IMPORT_UNSUPPORTED, Directive, RawServerBlock, unset_variables
from k8sgw.config.registry import Context, count_args, parser_for, registered
from k8sgw.config.transfer import check_zones
from k8sgw.errors import ConfigError
from k8sgw.labels import parse_label_selector

__all__ = ["build_config", "supported_directives"]

# Every directive of CoreDNS's plugin.cfg: one that k8sgw has no parser for is "not supported by
# k8sgw" rather than "unknown" (which is kept for typing mistakes).
COREDNS_PLUGINS = frozenset(
    """acl any auto autopath azure bufsize cache cancel chaos clouddns debug dns64 dnssec dnstap
    erratic errors etcd file forward geoip grpc grpc_server header health hosts https https3
    k8s_external k8s_gateway kubernetes loadbalance local log loop metadata minimal multisocket
    nomad nsid on pprof prometheus quic ready reload rewrite root route53 secondary sign template
    timeouts tls trace transfer tsig view whoami""".split()
)


_DIGITS = re.compile(r"[0-9]+")
# Letters, digits, "_" and inner "-" (hostname rules plus _service labels); at most 63 octets.
_LABEL = re.compile(rb"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_REL_LABEL = re.compile(_LABEL.pattern.decode().replace("A-Za-z", "a-z"))
# Kubernetes DNS-1123 subdomain: IngressClass and GatewayClass names.
_DNS_1123_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")  # namespace and Service names
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_TRANSPORTS = ("tls://", "grpc://", "https://", "https3://", "quic://")


def supported_directives() -> tuple[str, ...]:
    """Every directive a server block may hold, for `k8sgw -plugins` and error messages."""
    return ("bind", "k8s_gateway", *registered())


def build_config(blocks: tuple[RawServerBlock, ...], *, filename: str, default_port: int) -> Config:
    """Interpret parsed server blocks.

    Raises:
        ConfigError: a bad key or argument, an unsupported or unknown directive, or the
            same ZONE:PORT served twice.
    """
    ctx = Context(filename, default_port)
    seen: dict[tuple[str, int], int] = {}
    servers = []
    for block in blocks:
        server = _server_block(block, ctx)
        for key, tok in zip(server.keys, block.keys, strict=True):
            if (key.zone, key.port) in seen:
                where = seen[key.zone, key.port]
                raise ctx.error(f"{key.zone}:{key.port} is served twice (also on line {where})", tok.line)
            seen[key.zone, key.port] = tok.line
        servers.append(server)
    return Config(filename=filename, servers=tuple(servers))


def _server_block(block: RawServerBlock, ctx: Context) -> ServerBlock:
    keys = tuple(_server_key(tok, ctx) for tok in block.keys)
    zones = tuple(dict.fromkeys(k.zone for k in keys))
    bind: list[str] = []
    gateway: GatewayConfig | None = None
    plugins: dict[str, Any] = {}
    first_line: dict[str, int] = {}
    for d in block.directives:
        if d.name == "bind":
            bind.extend(a for a in _bind(d, ctx) if a not in bind)
        elif d.name == "k8s_gateway":
            if gateway is not None:
                raise ctx.error(
                    f"k8s_gateway: only one per server block (the first is on line {gateway.line})", d.line
                )
            gateway = _gateway(d, zones, ctx)
        elif (parse := parser_for(d.name)) is not None:
            if d.name in first_line:
                raise ctx.error(f"{d.name}: given twice (first on line {first_line[d.name]})", d.line)
            first_line[d.name] = d.line
            plugins[d.name] = parse(d, ctx)
        elif d.name == "import":
            raise ctx.error(IMPORT_UNSUPPORTED, d.line)
        else:
            supported = ", ".join(supported_directives())
            if d.name in COREDNS_PLUGINS:
                message = f'directive "{d.name}" is not supported by k8sgw (supported: {supported})'
            else:
                message = f'unknown directive "{d.name}" (supported: {supported})'
            raise ctx.error(message, d.line)
    check_zones(plugins, gateway.zones if gateway is not None else None, ctx)
    return ServerBlock(keys=keys, bind=tuple(bind), gateway=gateway, plugins=plugins, line=block.line)


def _server_key(tok: Token, ctx: Context) -> ServerKey:
    try:
        return _parse_server_key(tok, ctx)
    except ConfigError as exc:
        if not tok.unset:
            raise
        raise ctx.error(f"{exc.message} ({unset_variables(tok.unset)})", tok.line) from exc


def _parse_server_key(tok: Token, ctx: Context) -> ServerKey:
    text = tok.text
    lowered = text.lower()
    if lowered.startswith("dns://"):
        text = text[len("dns://") :]
    else:
        for prefix in _TRANSPORTS:
            if lowered.startswith(prefix):
                raise ctx.error(
                    f'server block key "{tok.text}": transport {prefix} is not supported by k8sgw '
                    "(only plain DNS, dns://)",
                    tok.line,
                )
    zone_text, colon, port_text = text.rpartition(":")
    if not colon:
        zone_text, port = text, ctx.default_port
    elif _DIGITS.fullmatch(port_text) and int(port_text) <= 65535:
        port = int(port_text)
    else:
        raise ctx.error(
            f'server block key "{tok.text}": expected a port from 0 to 65535 after ":", got "{port_text}"',
            tok.line,
        )
    if not zone_text:
        raise ctx.error(
            f'server block key "{tok.text}": expected ZONE[:PORT] (use "." for every zone)', tok.line
        )
    if "/" in zone_text:
        raise ctx.error(
            f'server block key "{tok.text}": reverse zones written as CIDR are not supported', tok.line
        )
    zone = _zone(zone_text, ctx, tok.line, what=f'server block key "{tok.text}"')
    return ServerKey(zone=zone, port=port)


def _zone(text: str, ctx: Context, line: int, *, what: str) -> str:
    """Normalise a zone name: absolute, lower-case, trailing dot."""
    if text == ".":
        return "."
    try:
        if text in ("", "@"):
            raise ValueError
        name = dns.name.from_text(text, origin=dns.name.root)
        if not all(_LABEL.fullmatch(label) for label in name.labels[:-1]):
            raise ValueError
    except (dns.exception.DNSException, UnicodeError, ValueError):
        raise ctx.error(f'{what}: expected a DNS name like "example.com", got "{text}"', line) from None
    return name.canonicalize().to_text()


def _inside(name: str, zone: str) -> bool:
    return zone == "." or name == zone or name.endswith("." + zone)


def _bind(d: Directive, ctx: Context) -> list[str]:
    if d.children is not None:
        raise ctx.error("bind: does not take a block (interface names and except are not supported)", d.line)
    if not d.args:
        raise ctx.error("bind: expected one or more IP addresses", d.line)
    out = []
    for tok in d.args:
        try:
            out.append(str(ipaddress.ip_address(tok.text)))
        except ValueError:
            raise ctx.error(
                f'bind: expected an IP address, got "{tok.text}" (interface names are not supported)',
                tok.line,
            ) from None
    return out


# --- k8s_gateway ---------------------------------------------------------------------------

_Option = Callable[[Directive, tuple[str, ...], Context], tuple[str, Any]]


def _gateway(d: Directive, server_zones: tuple[str, ...], ctx: Context) -> GatewayConfig:
    zones = server_zones
    if d.args:
        listed: dict[str, None] = {}
        for tok in d.args:
            zone = _zone(tok.text, ctx, tok.line, what="k8s_gateway")
            if not any(_inside(zone, sz) for sz in server_zones):
                raise ctx.error(
                    f'k8s_gateway: zone "{zone}" is not inside the server block\'s zones '
                    f"({', '.join(server_zones)}), so it would never be queried",
                    tok.line,
                )
            problem = reverse_zone_problem(dns.name.from_text(zone))
            if problem:
                raise ctx.error(f'k8s_gateway: reverse zone "{zone}" {problem}', tok.line)
            listed[zone] = None
        zones = tuple(listed)
    else:
        for zone in zones:
            if zone != "." and (problem := reverse_zone_problem(dns.name.from_text(zone))):
                raise ctx.error(f'k8s_gateway: reverse zone "{zone}" {problem}', d.line)
    options: dict[str, Any] = {}
    clusters: list[KubeconfigRef] = []
    first_line: dict[str, int] = {}
    for child in d.children or ():
        handler = _OPTIONS.get(child.name)
        if handler is None:
            raise ctx.error(_unknown_option(child.name), child.line)
        if child.name in first_line and child.name != "kubeconfig":  # one kubeconfig line per cluster
            raise ctx.error(f"{child.name}: given twice (first on line {first_line[child.name]})", child.line)
        first_line.setdefault(child.name, child.line)
        if child.children is not None:
            raise ctx.error(f"{child.name}: does not take a block", child.line)
        field, value = handler(child, zones, ctx)
        if field == "kubeconfig":
            clusters.append(_named_cluster(value, clusters, child, ctx))
            continue
        options[field] = value
    if clusters:
        options["kubeconfig"] = clusters[0]
    if len(clusters) > 1:
        options["clusters"] = tuple(clusters)
    return GatewayConfig(zones=zones, line=d.line, **options)


def _named_cluster(ref: KubeconfigRef, earlier: list[KubeconfigRef], d: Directive, ctx: Context) -> KubeconfigRef:
    """A kubeconfig line is one cluster, named by its CONTEXT, else by its file's name."""
    if any(other.cluster == ref.cluster for other in earlier):
        raise ctx.error(
            f'kubeconfig: a second cluster named "{ref.cluster}"; give each kubeconfig line its own CONTEXT', d.line
        )
    return ref


def _unknown_option(name: str) -> str:
    names = ", ".join(_OPTIONS)
    hint = next((f' (did you mean "{o}"?)' for o in _OPTIONS if o.lower() == name.lower()), "")
    return f'k8s_gateway: unknown option "{name}"{hint} (expected one of: {names})'


def _resources(d: Directive, zones: tuple[str, ...], ctx: Context) -> tuple[str, Any]:
    count_args(d, ctx, "one or more kinds (" + ", ".join(SUPPORTED_RESOURCES) + ")", 1, None)
    by_lower = {k.lower(): k for k in SUPPORTED_RESOURCES}
    wanted = set()
    for tok in d.args:
        kind = by_lower.get(tok.text.lower())
        if kind is None:
            supported = ", ".join(SUPPORTED_RESOURCES)
            raise ctx.error(f'resources: unknown kind "{tok.text}" (supported: {supported})', tok.line)
        wanted.add(kind)
    return "resources", tuple(k for k in SUPPORTED_RESOURCES if k in wanted)


def _node_address_type(d: Directive, zones: tuple[str, ...], ctx: Context) -> tuple[str, Any]:
    count_args(d, ctx, "1 argument (" + " or ".join(NODE_ADDRESS_TYPES) + ")", 1, 1)
    tok = d.args[0]
    by_lower = {t.lower(): t for t in NODE_ADDRESS_TYPES}
    if tok.text.lower() not in by_lower:
        raise ctx.error(
            f'nodeAddressType: expected {" or ".join(NODE_ADDRESS_TYPES)}, got "{tok.text}"', tok.line
        )
    return "node_address_type", by_lower[tok.text.lower()]


def _traefik_service(d: Directive, zones: tuple[str, ...], ctx: Context) -> tuple[str, Any]:
    count_args(d, ctx, "1 argument (NAMESPACE/NAME of the Service in front of Traefik)", 1, 1)
    tok = d.args[0]
    namespace, _, name = tok.text.partition("/")
    if not (_DNS_1123_LABEL.fullmatch(namespace) and _DNS_1123_LABEL.fullmatch(name)):
        raise ctx.error(f'traefikService: expected NAMESPACE/NAME like "traefik/traefik", got "{tok.text}"', tok.line)
    return "traefik_service", tok.text


def _ttl(d: Directive, zones: tuple[str, ...], ctx: Context) -> tuple[str, Any]:
    count_args(d, ctx, "1 argument (seconds from 0 to 3600)", 1, 1)
    tok = d.args[0]
    if not _DIGITS.fullmatch(tok.text) or int(tok.text) > 3600:
        raise ctx.error(f'ttl: expected an integer from 0 to 3600, got "{tok.text}"', tok.line)
    return "ttl", int(tok.text)


def _relative_name(d: Directive, ctx: Context) -> str:
    count_args(d, ctx, '1 argument (a name like "dns1.kube-system")', 1, 1)
    tok = d.args[0]
    text = tok.text.lower()
    if len(text) > 253 or not all(_REL_LABEL.fullmatch(label) for label in text.split(".")):
        hint = " without the trailing dot" if text.endswith(".") else ""
        raise ctx.error(
            f'{d.name}: expected a relative DNS name like "dns1.kube-system"{hint}, got "{tok.text}"',
            tok.line,
        )
    return text


def _apex(d: Directive, zones: tuple[str, ...], ctx: Context) -> tuple[str, Any]:
    return "apex", _relative_name(d, ctx)


def _secondary(d: Directive, zones: tuple[str, ...], ctx: Context) -> tuple[str, Any]:
    return "secondary", _relative_name(d, ctx)


def _kubeconfig(d: Directive, zones: tuple[str, ...], ctx: Context) -> tuple[str, Any]:
    count_args(d, ctx, "FILE [CONTEXT]", 1, 2)
    for tok in d.args:
        if not tok.text:
            raise ctx.error("kubeconfig: expected FILE [CONTEXT], got an empty argument", tok.line)
    path = os.path.abspath(os.path.join(ctx.base_dir, os.path.expanduser(d.args[0].text)))
    context = d.args[1].text if len(d.args) == 2 else None
    return "kubeconfig", KubeconfigRef(path=path, context=context)


def _fallthrough(d: Directive, zones: tuple[str, ...], ctx: Context) -> tuple[str, Any]:
    """CoreDNS ``fallthrough [ZONES...]``, reduced to zones k8s_gateway answers.

    A listed zone above some of ``zones`` (``fallthrough .``) stands for those zones;
    when the result covers every zone it is ``()``, "all".
    """
    out: dict[str, None] = {}
    for tok in d.args:
        fz = _zone(tok.text, ctx, tok.line, what="fallthrough")
        if any(_inside(fz, z) for z in zones):
            out[fz] = None
            continue
        below = [z for z in zones if _inside(z, fz)]
        if not below:
            raise ctx.error(
                f'fallthrough: zone "{fz}" is not inside the k8s_gateway zones ({", ".join(zones)})',
                tok.line,
            )
        out.update(dict.fromkeys(below))
    if set(zones) <= set(out):
        return "fallthrough", ()
    return "fallthrough", tuple(out)


def _class_names(d: Directive, ctx: Context) -> tuple[str, ...]:
    count_args(d, ctx, "one or more class names", 1, None)
    for tok in d.args:
        if len(tok.text) > 253 or not _SUBDOMAIN.fullmatch(tok.text):
            raise ctx.error(
                f'{d.name}: expected a Kubernetes object name (lower-case DNS subdomain), got "{tok.text}"',
                tok.line,
            )
    return tuple(dict.fromkeys(t.text for t in d.args))


def _ingress_classes(d: Directive, zones: tuple[str, ...], ctx: Context) -> tuple[str, Any]:
    return "ingress_classes", _class_names(d, ctx)


def _gateway_classes(d: Directive, zones: tuple[str, ...], ctx: Context) -> tuple[str, Any]:
    return "gateway_classes", _class_names(d, ctx)


def _service_label_selectors(d: Directive, zones: tuple[str, ...], ctx: Context) -> tuple[str, Any]:
    count_args(d, ctx, 'one or more label selectors like "app=web"', 1, None)
    for tok in d.args:
        try:
            if not tok.text.strip():
                raise ValueError("empty")  # an empty selector would select every Service
            parse_label_selector(tok.text)
        except ValueError:
            raise ctx.error(
                f'serviceLabelSelectors: invalid label selector "{tok.text}" (expected comma-separated '
                "key, !key, key=value, key==value, key!=value, key in (a,b) or key notin (a,b))",
                tok.line,
            ) from None
    return "service_label_selectors", tuple(dict.fromkeys(t.text.strip() for t in d.args))


_OPTIONS: dict[str, _Option] = {
    "resources": _resources,
    "ttl": _ttl,
    "apex": _apex,
    "secondary": _secondary,
    "kubeconfig": _kubeconfig,
    "fallthrough": _fallthrough,
    "ingressClasses": _ingress_classes,
    "gatewayClasses": _gateway_classes,
    "serviceLabelSelectors": _service_label_selectors,
    "nodeAddressType": _node_address_type,
    "traefikService": _traefik_service,
}
