"""explain(): why one name answers what it answers, read from one record map and its notes.

The answer is what `answer()` returns for the query, over the record map of one version; the
objects are read from the notes the indexer published with that same map (records/noteindex.py).
Nothing here decides again what an object claims: the notes say it, and ownership between kinds
is claims.owner_kind, which the indexer uses too. So the explanation cannot disagree with the
answer.

Synchronous and without I/O: the CLI calls it after listing, the ops routes between two publishes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.reversename

from k8sgw.arpa import is_reverse
from k8sgw.config import Config, GatewayConfig
from k8sgw.dnsserver.answer import Authority, Block, View, _wildcard_for, answer
from k8sgw.dnsserver.forward import Forwarder
from k8sgw.explain.objectkeys import object_namespace
from k8sgw.kubeapi.kinds import CLAIMING_KINDS
from k8sgw.records.claims import owner_kind
from k8sgw.records.keys import NameKey
from k8sgw.records.noteindex import NoteSnapshot
from k8sgw.records.reasons import Why, host_text
from k8sgw.records.recordmap import RecordMap
from k8sgw.records.settings import ZoneSettings

__all__ = [
    "Explainer",
    "Explanation",
    "KindState",
    "Mention",
    "Step",
    "explain_in_views",
    "explainer_for",
    "forwarder_of",
    "gateway_blocks",
    "kind_states",
    "mentions",
    "other_blocks",
    "zones_of",
]


@dataclass(frozen=True, slots=True)
class KindState:
    """Whether a claiming kind is read, and if not why: `resources`, an absent CRD, RBAC."""

    kind: str
    watched: bool
    reason: str | None = None  # for one not watched: what to change


@dataclass(frozen=True, slots=True)
class Mention:
    """One object that mentions the name: how it supplies it, or why it does not count."""

    kind: str
    namespace: str
    name: str
    at: str  # the name the object is noted at (a wildcard owner, for a wildcard answer)
    why: Why
    detail: str | None
    counts: bool


@dataclass(frozen=True, slots=True)
class Step:
    """One name the lookup visited (the name asked, then each in-zone CNAME target)."""

    name: str
    owner: str | None  # the record map's owner that answered: the name, its wildcard, or none
    result: str  # "answer", "CNAME", "NODATA", "NXDOMAIN"


@dataclass
class Explanation:
    """What `k8sgw explain NAME TYPE` prints (render.py)."""

    name: str
    type: str
    zone: str | None
    zone_note: str
    version: int = 0
    serial: int = 0
    ready: bool = True
    rcode: str = "REFUSED"
    answer: list[str] = field(default_factory=list)
    authority: list[str] = field(default_factory=list)
    additional: list[str] = field(default_factory=list)
    forwarded: bool = False
    chain: list[Step] = field(default_factory=list)
    supplying: list[Mention] = field(default_factory=list)
    not_counting: list[Mention] = field(default_factory=list)
    kinds: list[KindState] = field(default_factory=list)


class _Pinned:
    """A map source that always gives one map: the answer and its notes share a version."""

    def __init__(self, records: RecordMap) -> None:
        self.current = records


@dataclass(frozen=True)
class Explainer:
    """What one k8s_gateway block explains from: its settings, its blocks, and a way to read the
    map and the notes of one version together (RecordStore.explained)."""

    settings: ZoneSettings
    zones: tuple[dns.name.Name, ...]
    fallthrough: tuple[dns.name.Name, ...] | None
    forwarder: Forwarder | None
    snapshot: Callable[[], tuple[RecordMap, NoteSnapshot]]
    kinds: Callable[[], Sequence[KindState]] = tuple

    def block(self, records: RecordMap) -> Block:
        return Block(self.zones, Authority(self.settings, _Pinned(records), self.fallthrough), self.forwarder)


def gateway_blocks(cfg: Config) -> list[tuple[int, GatewayConfig]]:
    """(index of the server block, its GatewayConfig) for each block with k8s_gateway, in order:
    the order in which the application creates its stores."""
    return [(i, s.gateway) for i, s in enumerate(cfg.servers) if s.gateway is not None]


def forwarder_of(cfg: Config, index: int) -> Forwarder | None:
    """The block's `forward`, for covers() only (no cache, no loop detection: nothing is sent)."""
    forward = cfg.servers[index].plugin("forward")
    return Forwarder(forward) if forward is not None else None


def zones_of(cfg: Config, index: int) -> tuple[dns.name.Name, ...]:
    return tuple(dns.name.from_text(k.zone) for k in cfg.servers[index].keys)


class Explained(Protocol):
    """What an explanation reads from: a RecordStore's settings and its map with its notes."""

    settings: ZoneSettings

    def explained(self) -> tuple[RecordMap, NoteSnapshot]: ...


def explainer_for(cfg: Config, index: int, store: Explained, unavailable: Mapping[str, str]) -> Explainer:
    """The Explainer of server block `index` (which has k8s_gateway), reading `store`; `unavailable`:
    the kinds the API cannot give, with why (read at each explanation)."""
    gw = cfg.servers[index].gateway
    assert gw is not None
    fallthrough = None if gw.fallthrough is None else tuple(dns.name.from_text(z) for z in gw.fallthrough)
    return Explainer(
        store.settings, zones_of(cfg, index), fallthrough, forwarder_of(cfg, index), store.explained,
        partial(kind_states, gw.resources, unavailable),
    )


def other_blocks(cfg: Config) -> list[Block]:
    """The server blocks without k8s_gateway (a `forward` of their own, or nothing: REFUSED)."""
    return [
        Block(zones_of(cfg, i), None, forwarder_of(cfg, i)) for i, s in enumerate(cfg.servers) if s.gateway is None
    ]


def explain_in_views(
    name: str, rdtype: str, explainers: Sequence[Explainer], others: Sequence[Block] = ()
) -> Explanation:
    """Explain `name` `rdtype` as the server block that would answer it does (`others`: the
    blocks without k8s_gateway)."""
    qname = dns.name.from_text(name)
    qtype = dns.rdatatype.from_text(rdtype)
    type_text = dns.rdatatype.to_text(qtype)
    reads = {}  # each map with its notes, read once, by the block answering from it
    for e in explainers:
        records, notes = e.snapshot()
        reads[e.block(records)] = (e, records, notes)
    view = View([*reads, *others])
    zone, block = view.zone_for(qname)
    if block is None or block not in reads:
        note = "no server block serves this name: REFUSED" if block is None else f"server block {zone} has no k8s_gateway"
        out = Explanation(qname.to_text(), type_text, None, note)
        if block is not None:
            reply = answer(dns.message.make_query(qname, qtype), view)
            out.forwarded = isinstance(reply, Block)
            out.rcode = "FORWARDED" if out.forwarded else dns.rcode.to_text(reply.rcode())
        for _explainer, _records, notes in reads.values():  # objects that name it anyway
            supplying, not_counting = mentions([qname.to_text()], notes)
            out.not_counting.extend(supplying + not_counting)
        return out
    explainer, records, notes = reads[block]
    k8s_zone = explainer.settings.zone_of(qname)  # forward or reverse
    query = dns.message.make_query(qname, qtype)
    reply = answer(query, view)
    out = Explanation(
        qname.to_text(), type_text, k8s_zone.to_text() if k8s_zone else None, "",
        records.version, records.serial, records.ready, kinds=list(explainer.kinds()),
    )
    if k8s_zone is None:
        zones = " ".join(z.to_text() for z in explainer.settings.zones)
        out.zone_note = f"outside every k8s_gateway zone ({zones}) of server block {zone}"
    else:
        out.zone_note = f"zone {k8s_zone} (server block {zone})"
    if isinstance(reply, Block):
        out.forwarded = True
        out.rcode = "FORWARDED"
    else:
        out.rcode = dns.rcode.to_text(reply.rcode())
        out.answer = [line for rrset in reply.answer for line in rrset.to_text().splitlines()]
        out.authority = [line for rrset in reply.authority for line in rrset.to_text().splitlines()]
        out.additional = [line for rrset in reply.additional for line in rrset.to_text().splitlines()]
    if k8s_zone is not None and records.ready:
        out.chain = _chain(qname, k8s_zone, reply, records, explainer.settings)
    _mentions(out, qname, records, notes, explainer.settings)
    if k8s_zone is not None and is_reverse(k8s_zone):
        out.supplying.extend(_ptr_sources(qname, reply, notes))
    return out


def _ptr_sources(qname: dns.name.Name, reply: dns.message.Message | Block, notes: NoteSnapshot) -> list[Mention]:
    """A PTR answer's objects: each PTR target is a forward name with this address, and the
    objects that supply that name supply the PTR (the reverse index derives it from them)."""
    if not isinstance(reply, dns.message.Message):
        return []
    targets = [r.target.to_text() for rrset in reply.answer if rrset.rdtype == dns.rdatatype.PTR for r in rrset]
    if not targets:
        return []
    try:
        address = dns.reversename.to_address(qname)
    except (dns.exception.DNSException, ValueError):
        address = qname.to_text()
    supplying, _not_counting = mentions(targets, notes)
    return [
        Mention(m.kind, m.namespace, m.name, qname.to_text(), Why.REVERSE_ADDRESS, f"{m.at} has {address} ({_how(m.why, m.detail)})", True)
        for m in supplying
    ]


def _chain(
    qname: dns.name.Name, zone: dns.name.Name, reply: dns.message.Message | Block, records: RecordMap, settings: ZoneSettings
) -> list[Step]:
    """The names the lookup visited, with the map owner of each (the name itself or its wildcard).

    Read from the reply: the answer section's CNAMEs are the chain answer() followed."""
    rrsets = reply.answer if isinstance(reply, dns.message.Message) else []
    names = [qname] + [r[0].target for r in rrsets if r.rdtype == dns.rdatatype.CNAME]
    steps = []
    for i, name in enumerate(names):
        name_zone = settings.zone_of(name)
        if name_zone is None:
            steps.append(Step(name.to_text(), None, "outside the zones: the resolver follows it"))
            break
        owner: dns.name.Name | None = name
        if records.get(name) is None:
            owner = _wildcard_for(name, name_zone, records) if name != name_zone else None
            if owner is not None and records.get(owner) is None:
                owner = None
        if i < len(names) - 1:
            result = "CNAME"
        elif isinstance(reply, dns.message.Message) and reply.rcode() == dns.rcode.NXDOMAIN:
            result = "NXDOMAIN"
        elif any(r.name == name and r.rdtype != dns.rdatatype.CNAME for r in rrsets):
            result = "answer"
        else:
            result = "NODATA"
        steps.append(Step(name.to_text(), owner.to_text() if owner is not None else None, result))
    return steps


def _mentions(
    out: Explanation, qname: dns.name.Name, records: RecordMap, notes: NoteSnapshot, settings: ZoneSettings
) -> None:
    """Every object noted at a name the lookup visited (or at its wildcard owner)."""
    names = [t for step in out.chain or [Step(qname.to_text(), None, "")] for t in (step.name, step.owner) if t]
    supplying, not_counting = mentions(names, notes)
    out.supplying.extend(supplying)
    # The nameserver Service's own claim of its host is refused by design: its addresses are there.
    nameservers = settings.nameserver_service_keys()
    out.not_counting.extend(
        m for m in not_counting
        if not (m.kind == "Service" and (m.namespace, m.name) in nameservers and m.why is Why.RESERVED_NAME)
    )
    for text in dict.fromkeys(names):
        key = NameKey.of(dns.name.from_text(text))
        if key in settings.nameserver_hosts:
            service = settings.nameserver_hosts[key]
            ns, svc = service if service else ("", "(none)")
            out.supplying.append(Mention("Service", ns, svc, text, Why.NAMESERVER_HOST, None, True))
        if key in settings.zone_keys:
            out.supplying.append(Mention("(zone)", "", "", text, Why.ZONE_APEX, None, True))


def mentions(names: Iterable[str], notes: NoteSnapshot) -> tuple[list[Mention], list[Mention]]:
    """The objects noted at any of `names`: those that supply them, and those that do not count.

    An object that supplies a name its kind does not own (claims.owner_kind) is shadowed."""
    wanted: dict[NameKey | str, str] = {}
    for text in names:
        wanted[NameKey.of(dns.name.from_text(text))] = text
        wanted[host_text(text)] = text  # hosts noted by text: those that are not valid names
    found: list[tuple[str, str, str, Why, str | None, str]] = []
    kinds_at: dict[str, set[str]] = {}
    for kind, by_key in notes.by_kind.items():  # every note of every object: plain loops
        for key, object_notes in by_key.items():
            for noted_at, why, detail in object_notes:
                if noted_at in wanted:
                    at = wanted[noted_at]
                    found.append((kind, object_namespace(key), key[-1], why, detail, at))
                    if why.supplies:
                        kinds_at.setdefault(at, set()).add(kind)
    supplying: dict[Mention, None] = {}
    not_counting: dict[Mention, None] = {}
    for kind, namespace, obj_name, why, detail, at in sorted(found, key=_order):
        if why.supplies:
            owner = owner_kind(kinds_at[at])
            if owner != kind:
                shadow = f"{owner} owns {at}; this would count through {_how(why, detail)}"
                not_counting[Mention(kind, namespace, obj_name, at, Why.SHADOWED, shadow, False)] = None
            else:
                supplying[Mention(kind, namespace, obj_name, at, why, detail, True)] = None
        else:
            not_counting[Mention(kind, namespace, obj_name, at, why, detail, False)] = None
    return list(supplying), list(not_counting)


def _how(why: Why, detail: str | None) -> str:
    return f"{why.text}: {detail}" if detail else why.text


def _order(item: tuple[str, str, str, Why, str | None, str]) -> tuple[int, str, str]:
    kind, namespace, name = item[0], item[1], item[2]
    rank = CLAIMING_KINDS.index(kind) if kind in CLAIMING_KINDS else len(CLAIMING_KINDS)
    return rank, namespace, name


def kind_states(resources: Iterable[str], failures: Mapping[str, str] | None = None) -> list[KindState]:
    """Each claiming kind: watched, or why not (not in `resources`, or a list failure's text)."""
    enabled = set(resources)
    failures = failures or {}
    out = []
    for kind in CLAIMING_KINDS:
        if kind not in enabled:
            out.append(KindState(kind, False, "not in resources of k8s_gateway"))
        elif kind in failures:
            out.append(KindState(kind, False, failures[kind]))
        else:
            out.append(KindState(kind, True))
    return out
