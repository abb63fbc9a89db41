"""`k8sgw explain NAME [TYPE]` and `k8sgw explain --skipped`, from a laptop.

Reads the same Corefile as the server, lists each kind the server would watch once (no watch),
feeds the lists to a RecordStore exactly as the watchers feed the server's, and explains through
the same answer() over that store's map and notes. Kinds `resources` leaves out are listed too
(when they can be), into a store of their own, only to say which of their objects would count.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rdatatype
import trio

from k8sgw.config import Config, GatewayConfig, load
from k8sgw.errors import ConfigError, K8sgwError
from k8sgw.explain.core import (
    Explainer,
    Explanation,
    Mention,
    explain_in_views,
    explainer_for,
    gateway_blocks,
    mentions,
    other_blocks,
)
from k8sgw.explain.observer import absent_reason, forbidden_reason
from k8sgw.explain.render import dumps, explanation_json, explanation_text, skipped_json, skipped_text
from k8sgw.explain.skipped import skipped_objects
from k8sgw.kubeapi.client import KubeClient
from k8sgw.kubeapi.errors import ForbiddenError, NotFoundError
from k8sgw.kubeapi.events import Synced
from k8sgw.kubeapi.kinds import CLAIMING_KINDS, KINDS
from k8sgw.kubeapi.kubeconfig import resolve_connection
from k8sgw.kubeapi.watch import list_objects
from k8sgw.records.reasons import Why
from k8sgw.records.store import RecordStore, ZoneSettings

__all__ = ["main", "parser"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="k8sgw explain",
        description="Why does NAME answer what it answers? Lists each kind once (no watch) and explains "
        "the answer k8sgw gives, the objects that supply it, and every object that mentions it but does not count.",
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="the name to explain")
    p.add_argument("type", nargs="?", default="A", metavar="TYPE", help="query type (default A)")
    p.add_argument("-conf", "--conf", default="Corefile", metavar="FILE", help="Corefile (default: ./Corefile)")
    p.add_argument("--kubeconfig", "-kubeconfig", metavar="FILE", help="kubeconfig, instead of the Corefile's or kubectl's")
    p.add_argument("--context", "-context", metavar="NAME", help="kubeconfig context to use")
    p.add_argument("-o", "--output", choices=["text", "json"], default="text", help="text (default) or json")
    p.add_argument("--skipped", action="store_true", help="list every object that claims a name but supplies no record")
    return p


@dataclass
class _Listed:
    """One k8s_gateway block, listed: the store the server would have, and what could not be read."""

    index: int
    gateway: GatewayConfig
    store: RecordStore
    failures: dict[str, str] = field(default_factory=dict)
    unwatched: RecordStore | None = None  # the kinds `resources` leaves out


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)
    if not args.skipped and not args.name:
        parser().error("give NAME (and optionally TYPE), or --skipped")
    logging.basicConfig(level=logging.ERROR, format="k8sgw explain: %(levelname)s %(name)s: %(message)s")
    try:
        if args.name:
            dns.rdatatype.from_text(args.type)
            dns.name.from_text(args.name)
        cfg = load(args.conf)
        listed = trio.run(_list_all, cfg, args.kubeconfig, args.context)
    except (dns.exception.DNSException, ValueError) as exc:
        print(f"k8sgw explain: {exc}", file=sys.stderr)
        return 2
    except (ConfigError, K8sgwError, OSError) as exc:
        print(f"k8sgw explain: {exc}", file=sys.stderr)
        return 1
    if args.skipped:
        _print_skipped(listed, args.output)
    else:
        explanation = _explain(cfg, listed, args.name, args.type)
        sys.stdout.write(dumps(explanation_json(explanation)) if args.output == "json" else explanation_text(explanation))
    return 0


async def _list_all(cfg: Config, kubeconfig: str | None, context: str | None) -> list[_Listed]:
    out = []
    for index, gw in gateway_blocks(cfg):
        ref = gw.kubeconfig
        conn = resolve_connection(kubeconfig or (ref.path if ref else None), context or (ref.context if ref else None))
        settings = ZoneSettings.from_config(gw)
        store = RecordStore(settings, gw.resources)
        block = _Listed(index, gw, store)
        unwatched = [k for k in CLAIMING_KINDS if k not in gw.resources]
        async with KubeClient(conn) as client:
            lists: dict[str, Synced] = {}
            for kind in store.kinds:
                lists[kind] = await _list(client, kind, block.failures)
            store.apply(lists.values())
            if unwatched:
                block.unwatched = RecordStore(settings, unwatched)
                for kind in block.unwatched.kinds:
                    if kind not in lists:
                        lists[kind] = await _list(client, kind, {})
                block.unwatched.apply(lists[kind] for kind in block.unwatched.kinds)
        out.append(block)
    return out


async def _list(client: KubeClient, name: str, failures: dict[str, str]) -> Synced:
    """Every object of a kind, as the watcher's first list sends it (its resourceVersion makes the
    SOA serial); an absent or forbidden kind is empty, as the watcher sends it, and its reason goes
    to failures."""
    kind = KINDS[name]
    for version in kind.versions:
        current = kind.at_version(version)
        try:
            objects, resource_version = await list_objects(client, current)
            return Synced(name, objects, resource_version)
        except NotFoundError:
            continue
        except ForbiddenError:
            failures[name] = forbidden_reason(current)
            return Synced(name, ())
    failures[name] = absent_reason(kind)
    return Synced(name, ())


def _explainers(cfg: Config, listed: Sequence[_Listed]) -> list[Explainer]:
    return [explainer_for(cfg, block.index, block.store, block.failures) for block in listed]


def _explain(cfg: Config, listed: Sequence[_Listed], name: str, rdtype: str) -> Explanation:
    explanation = explain_in_views(name, rdtype, _explainers(cfg, listed), other_blocks(cfg))
    names = [t for s in explanation.chain for t in (s.name, s.owner) if t] or [explanation.name]
    for block in listed:
        if block.unwatched is not None:
            explanation.not_counting.extend(_not_watched(names, block.unwatched))
    return explanation


def _not_watched(names: list[str], unwatched: RecordStore) -> list[Mention]:
    """Objects of kinds `resources` leaves out that mention the names: what they would do."""
    _records, notes = unwatched.explained()
    supplying, not_counting = mentions(names, notes)
    out = []
    for m in supplying + not_counting:
        if m.kind not in unwatched.kinds or m.kind not in CLAIMING_KINDS:
            continue
        would = "would supply it" if m.counts else "would not count either"
        how = f"{m.why.text}: {m.detail}" if m.detail else m.why.text
        detail = f"{m.kind} is not in resources of k8s_gateway; it {would} ({how})"
        out.append(Mention(m.kind, m.namespace, m.name, m.at, Why.KIND_NOT_WATCHED, detail, False))
    return out


def _print_skipped(listed: Sequence[_Listed], output: str) -> None:
    blocks = []
    for block in listed:
        records, notes = block.store.explained()
        found = skipped_objects(notes, block.store.settings)
        zones = [z.to_text() for z in block.store.settings.zones]
        if output == "json":
            blocks.append({"zones": zones, "version": records.version, "skipped": skipped_json(found)})
        else:
            sys.stdout.write(f"k8s_gateway {' '.join(zones)}:\n" + skipped_text(found))
    if output == "json":
        sys.stdout.write(dumps(blocks))
