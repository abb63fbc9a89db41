"""Answering AXFR and IXFR: who may transfer, and what they get.

A transfer query is parsed and checked by the wire path like any query, then returned to the
server as a TransferQuery, which it answers with the client's address: `to` decides whether the
client may transfer at all (REFUSED otherwise, RFC 5936 §2.2.1, logged once a minute per client).

- AXFR over TCP: the zone at one serial (RFC 5936). AXFR over UDP never reaches here: NOTIMP.
- IXFR (RFC 1995): the client's serial is the SOA in the query's authority section (§3). A client
  as new as us, or newer by RFC 1982, gets the single current SOA (§4); over UDP every answer is
  that single SOA, which tells a client behind to ask again over TCP (§2); over TCP the journal's
  condensed difference, or the whole zone when the journal does not reach back to its serial.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import dns.edns
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from k8sgw.config.transfer import TransferConfig
from k8sgw.dnsserver.replies import encode, make_reply
from k8sgw.dnsserver.throttle import LogThrottle, repeats_note
from k8sgw.transfer.feeds import ZoneFeed
from k8sgw.transfer.outbound import axfr_records, ixfr_records, messages
from k8sgw.transfer.serial import serial_newer

__all__ = ["Outbound", "TransferPolicy", "TransferQuery"]

logger = logging.getLogger(__name__)

_refusals = LogThrottle(60.0)


class FeedLookup(Protocol):
    def get(self, zone: dns.name.Name) -> ZoneFeed | None: ...


@dataclass(frozen=True, slots=True)
class TransferPolicy:
    """A server block's `transfer`: the zones it transfers, to whom, and where their feeds are."""

    zones: tuple[dns.name.Name, ...]
    config: TransferConfig
    feeds: FeedLookup


class Outbound:
    """A reply of several messages (a transfer), sent by the TCP server one message at a time."""

    __slots__ = ("_messages", "_done")

    def __init__(self, messages: Iterator[bytes], done) -> None:
        self._messages = messages
        self._done = done

    def messages(self) -> Iterator[bytes]:
        return self._messages

    def finished(self, sent: int, complete: bool) -> None:
        """Called by the server once it stops: how many messages went out, and whether all did."""
        self._done(sent, complete)


class TransferQuery:
    """An AXFR or IXFR for a zone a block transfers, to be answered once the client is known."""

    __slots__ = ("query", "policy", "udp")

    def __init__(self, query: dns.message.Message, policy: TransferPolicy, *, udp: bool) -> None:
        self.query = query
        self.policy = policy
        self.udp = udp

    def answer(self, addr: Any) -> bytes | Outbound:
        query, udp = self.query, self.udp
        question = query.question[0]
        zone, qtype = question.name, question.rdtype
        client = addr[0] if addr else ""
        kind = dns.rdatatype.to_text(qtype)
        if not client or not self.policy.config.permits(client):
            held_back = _refusals.report(client)
            if held_back is not None:
                logger.info(
                    "%s of %s refused for %s: not in the `transfer` directive's `to`%s",
                    kind, zone, client or "an unknown client", repeats_note(held_back),
                )
            return encode(make_reply(query, dns.rcode.REFUSED, dns.edns.EDECode.PROHIBITED), query, udp=udp)
        feed = self.policy.feeds.get(zone)
        snapshot = feed.copy.snapshot if feed is not None else None
        if feed is None or snapshot is None:
            return encode(make_reply(query, dns.rcode.SERVFAIL, dns.edns.EDECode.NOT_READY), query, udp=udp)
        if qtype == dns.rdatatype.IXFR:
            client_serial = _client_serial(query)
            if client_serial is None:
                return encode(make_reply(query, dns.rcode.FORMERR), query, udp=udp)
            if udp or not serial_newer(snapshot.serial, client_serial):
                return b"".join(messages(query, (snapshot.soa,)))
            difference = feed.journal.since(client_serial)
            if difference is not None:
                records = ixfr_records(snapshot.soa, difference)
                what = f"IXFR from serial {client_serial}"
            else:
                records = axfr_records(snapshot)
                what = f"IXFR from serial {client_serial} (older than the journal: the whole zone)"
        else:
            records, what = axfr_records(snapshot), "AXFR"
        counted = [0]

        def done(sent: int, complete: bool) -> None:
            logger.info(
                "%s of %s serial %d to %s: %d records in %d messages%s", what, zone, snapshot.serial, client,
                counted[0], sent, "" if complete else ", cut short (the client stopped reading or went away)",
            )

        return Outbound(messages(query, records, counted), done)


def _client_serial(query: dns.message.Message) -> int | None:
    for rrset in query.authority:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            return rrset[0].serial
    return None
