"""ClaimIndex: every object's claims, and the RRsets that win at each name.

Several objects may claim one name. Per name and kind the index counts votes for each
(rdata, TTL); the RRsets published at a name are those of the first kind in ownership order
(PRECEDENCE) that has votes there. Changing one object costs O(its claims): the names whose votes
changed are all that is recomputed.

Most names are claimed by one object of one kind, each record once: their votes are kept as one
tuple (kind, claim, ...) of the claims themselves, which the object's claims already hold (about
60 bytes a name instead of 500 for a dict of Counters); a name gets the counting form when a second
kind, a repeated record or a fifth record arrives there, and keeps it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Iterable, Iterator

import dns.rdata
import dns.rdatatype

from k8sgw.records.keys import NameKey
from k8sgw.records.settings import ObjectKey
from k8sgw.records.sources import PRECEDENCE, RRSET_BYTES_MAX, Claim, record_bytes

__all__ = ["ClaimIndex", "RRsets", "TTLs", "owner_kind"]

logger = logging.getLogger(__name__)

_Vote = tuple[dns.rdata.Rdata, int | None]
_Counted = dict[str, Counter[_Vote]]
_Single = tuple  # (kind, Claim, ...): one kind's distinct records, each voted once
RRsets = dict[int, tuple[dns.rdata.Rdata, ...]]
TTLs = dict[int, int]
_SINGLE_MAX = 4  # records in the tuple form; past that a name counts (the tuple's scan and copy grow)
_STEP = 512  # claims between two chances for the caller to check in with the scheduler


class ClaimIndex:
    """Claims by kind and object key, and votes by name."""

    def __init__(self, kinds: tuple[str, ...]) -> None:
        self._claims: dict[str, dict[ObjectKey, tuple[Claim, ...]]] = {k: {} for k in kinds}
        self._votes: dict[NameKey, _Single | _Counted] = {}

    def __contains__(self, kind: str) -> bool:
        return kind in self._claims

    def set(self, kind: str, key: ObjectKey, claims: tuple[Claim, ...], touched: set[NameKey]) -> Iterator[None]:
        """Replace one object's claims, adding the names whose votes changed to touched.

        A generator: it yields every few hundred claims so that a caller on the event loop can
        check in (an object may claim thousands of records).
        """
        by_key = self._claims[kind]
        old = by_key.get(key, ())
        if len(old) == len(claims) and len(old) <= _STEP and old == claims:
            return  # the usual no-op re-list; a large equal set is cheaper to apply than to compare
        if claims:
            by_key[key] = claims
        else:
            by_key.pop(key, None)
        for i, claim in enumerate(old, 1):
            self._unvote(kind, claim)
            touched.add(claim[0])
            if i % _STEP == 0:
                yield
        for i, claim in enumerate(claims, 1):
            self._vote(kind, claim)
            touched.add(claim[0])
            if i % _STEP == 0:
                yield

    def _vote(self, kind: str, claim: Claim) -> None:
        name = claim[0]
        entry = self._votes.get(name)
        if entry is None:
            self._votes[name] = (kind, claim)
            return
        if type(entry) is tuple:
            if entry[0] == kind and len(entry) <= _SINGLE_MAX and not any(_same(c, claim) for c in entry[1:]):
                self._votes[name] = (*entry, claim)
                return
            entry = self._votes[name] = _counted(entry)
        entry.setdefault(kind, Counter())[(claim[1], claim[2])] += 1

    def _unvote(self, kind: str, claim: Claim) -> None:
        name = claim[0]
        entry = self._votes[name]
        if type(entry) is tuple:
            # The very claim voted is usually the one taken back (the object's own tuple).
            at = next((i for i, c in enumerate(entry) if c is claim), None)
            if at is None:
                at = next(i for i, c in enumerate(entry) if i and _same(c, claim))
            rest = entry[:at] + entry[at + 1 :]
            if len(rest) > 1:
                self._votes[name] = rest
            else:
                del self._votes[name]
            return
        votes = entry[kind]
        vote = (claim[1], claim[2])
        votes[vote] -= 1
        if votes[vote] <= 0:
            del votes[vote]

    def winning(self, name: NameKey) -> tuple[RRsets, TTLs]:
        """The RRsets and per-type TTLs of the first kind in PRECEDENCE with votes at name."""
        by_kind = self._votes.get(name)
        if by_kind is None:
            return {}, {}
        if type(by_kind) is tuple:
            return _rrsets_from_votes(name, by_kind[0], [(c[1], c[2]) for c in by_kind[1:]])
        kind = owner_kind(k for k, votes in by_kind.items() if votes)
        if kind is not None:
            return _rrsets_from_votes(name, kind, by_kind[kind])
        del self._votes[name]  # nobody claims it any more
        return {}, {}


def _same(a: Claim, b: Claim) -> bool:
    """One vote: the same record and TTL (identity first: comparing rdata encodes both)."""
    return a is b or (a[2] == b[2] and a[1] == b[1])


def _counted(single: _Single) -> _Counted:
    return {single[0]: Counter((c[1], c[2]) for c in single[1:])}


def owner_kind(kinds: Iterable[str]) -> str | None:
    """Of the kinds with records at one name, the one that owns it: the first in PRECEDENCE.

    The one rule of ownership, read by the indexer and by `k8sgw explain` alike."""
    present = set(kinds)
    return next((k for k in PRECEDENCE if k in present), None)


def _rrsets_from_votes(name: NameKey, kind: str, votes: Collection[_Vote]) -> tuple[RRsets, TTLs]:
    """Group the winning kind's records by type, each once (dicts: linear in the votes).

    An RRset has one TTL (RFC 2181 §5.2): the lowest set by a source. A CNAME excludes other data
    (RFC 1034 §3.6.2): when objects of one kind claim both at a name, the other data is answered
    and a WARNING says so; of several CNAMEs the lowest target is kept, so the answer does not
    depend on the order objects arrived in. Votes of several objects may together exceed what a
    reply can carry: the RRset is capped there too.
    """
    rrsets: dict[int, dict[dns.rdata.Rdata, None]] = {}
    ttls: TTLs = {}
    if len(votes) == 1:  # the usual name: one object, one record
        ((rdata, ttl),) = votes
        return {rdata.rdtype: (rdata,)}, ({rdata.rdtype: ttl} if ttl is not None else {})
    for rdata, ttl in votes:
        rrsets.setdefault(rdata.rdtype, {})[rdata] = None
        if ttl is not None:
            ttls[rdata.rdtype] = min(ttl, ttls.get(rdata.rdtype, ttl))
    cname = dns.rdatatype.CNAME
    if cname in rrsets and (len(rrsets) > 1 or len(rrsets[cname]) > 1):
        if len(rrsets) > 1:
            logger.warning(
                "%s: %s objects claim a CNAME and other data, which cannot share a name; answering the other data",
                name, kind,
            )
            del rrsets[cname]
            ttls.pop(cname, None)
        else:
            logger.warning("%s: %s objects claim %d different CNAMEs; answering one", name, kind, len(rrsets[cname]))
            rrsets[cname] = {min(rrsets[cname], key=lambda r: r.target): None}
    out: RRsets = {}
    for rdtype, found in rrsets.items():
        out[rdtype] = _capped(name, rdtype, tuple(found))
    return out, ttls


_FIXED_BYTES = {dns.rdatatype.A: 16, dns.rdatatype.AAAA: 28}  # record_bytes of every A, AAAA


def _capped(name: NameKey, rdtype: int, rdatas: tuple[dns.rdata.Rdata, ...]) -> tuple[dns.rdata.Rdata, ...]:
    fixed = _FIXED_BYTES.get(rdtype)
    if fixed is not None and len(rdatas) * fixed <= RRSET_BYTES_MAX:
        return rdatas
    total = 0
    for i, rdata in enumerate(rdatas):
        total += record_bytes(rdata)
        if total > RRSET_BYTES_MAX:
            logger.warning(
                "%s %s: %d records from several objects, more than a reply can carry; answering %d",
                name, dns.rdatatype.to_text(rdtype), len(rdatas), i,
            )
            return rdatas[:i]
    return rdatas
