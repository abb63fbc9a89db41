"""NOTIFY (RFC 1996): tell the secondaries a zone's serial changed, so they transfer now rather
than at their next refresh.

Coalesced: at most one round per zone per second, for the newest serial (a burst of changes is
one NOTIFY; a secondary fetches the latest anyway). Each target of a round is sent to over UDP
until it acknowledges, RETRIES times with the wait doubling (RFC 1996 §3.6: retry until a
response); a newer round replaces the retries of an older one. Signed with the zone's key when
`tsig` has one, since a secondary configured with a key ignores an unsigned NOTIFY.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset
import trio

if TYPE_CHECKING:
    from k8sgw.transfer.feeds import ZoneSource

__all__ = ["FIRST_WAIT", "MIN_INTERVAL", "RETRIES", "Notifier"]

logger = logging.getLogger(__name__)

MIN_INTERVAL = 1.0  # seconds between two rounds for one zone
RETRIES = 5  # sends to one target per round, acknowledged or not
FIRST_WAIT = 1.0  # seconds for the first acknowledgement; doubles with each retry


class Notifier:
    """The NOTIFY rounds of one zone; `poke` is called by the zone's feed on each new serial."""

    def __init__(self, zone: dns.name.Name) -> None:
        self.zone = zone
        self._serial: int | None = None
        self._poked = trio.Event()
        self.acknowledged: dict[tuple[str, int], int] = {}
        """target → the newest serial it acknowledged (for tests and explanations)."""

    def poke(self, serial: int) -> None:
        self._serial = serial
        self._poked.set()

    async def run(self, source: Callable[[], ZoneSource]) -> None:
        last_round = -math.inf
        round_scope = trio.CancelScope()
        async with trio.open_nursery() as nursery:
            while True:
                await self._poked.wait()
                await trio.sleep_until(last_round + MIN_INTERVAL)  # the rate limit, not a wait for an event
                self._poked = trio.Event()
                last_round = trio.current_time()
                serial = self._serial
                assert serial is not None
                current = source()
                targets = current.config.notify_targets()
                if not targets:
                    continue
                key = current.tsig.signing_key(self.zone) if current.tsig else None
                records = current.store.current
                soa = records.rdatas(self.zone, dns.rdatatype.SOA)
                hint = (soa[0], current.ttl) if soa and soa[0].serial == serial else None
                round_scope.cancel()  # an older serial's retries are superseded
                round_scope = trio.CancelScope()
                nursery.start_soon(self._round, round_scope, targets, serial, key, hint)

    async def _round(self, scope: trio.CancelScope, targets, serial: int, key, hint) -> None:
        with scope:
            async with trio.open_nursery() as nursery:
                for host, port in targets:
                    nursery.start_soon(self._notify, host, port, serial, key, hint)

    async def _notify(self, host: str, port: int, serial: int, key, hint) -> None:
        soa, ttl = hint if hint is not None else (None, 0)
        wait = FIRST_WAIT
        for _ in range(RETRIES):
            message = dns.message.make_query(self.zone, dns.rdatatype.SOA)
            message.flags = dns.flags.AA  # RFC 1996 §3.7: AA set, RD clear
            message.set_opcode(dns.opcode.NOTIFY)  # after the flags: the opcode is bits of them
            if soa is not None:  # §3.7: the new SOA as a hint, so a secondary may skip its SOA query
                message.answer.append(dns.rrset.from_rdata(self.zone, ttl, soa))
            if key is not None:
                message.use_tsig(key)
            try:
                reply = await dns.asyncquery.udp(message, host, port=port, timeout=wait)
            except (dns.exception.Timeout, OSError, dns.exception.DNSException) as exc:
                logger.debug("NOTIFY %s serial %d to %s port %d: %s", self.zone, serial, host, port, exc)
                wait *= 2
                continue
            if reply.rcode() != dns.rcode.NOERROR:
                logger.warning(
                    "NOTIFY %s serial %d to %s port %d answered %s", self.zone, serial, host, port,
                    dns.rcode.to_text(reply.rcode()),
                )
                return
            self.acknowledged[(host, port)] = serial
            logger.debug("NOTIFY %s serial %d acknowledged by %s port %d", self.zone, serial, host, port)
            return
        logger.warning(
            "NOTIFY %s serial %d to %s port %d: no acknowledgement after %d tries", self.zone, serial, host, port, RETRIES
        )
