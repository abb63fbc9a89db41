"""List and watch one kind, forever, and tell the indexer: kopf's three layers, in trio.

    watch_forever     the supervision point: retries with jittered capped backoff, logs, never returns
    └─ list_then_watch  list → Synced → watch from the list's resourceVersion, re-watch on stream end
       ├─ list_objects  paginated LIST (limit/continue), invalid items skipped
       └─ stream_watch  one watch request: events → channel, BOOKMARK/ERROR handled, stall detection

Every layer takes one `Watch` (client, kind, where events go, selector, retry policy, observer).
A watcher owns only its `WatchState` (the resourceVersion to resume from); the indexer owns the
objects. It never relists when a resume is possible: after a stream ends, is cut or stalls it
watches again from the last resourceVersion seen (event or BOOKMARK). It relists (and sends a
Synced that replaces the kind's state, so objects deleted meanwhile vanish) only on 410
Expired/Gone, 504 ResourceVersionTooLarge, a stream that closes at once with nothing in it (a
stale resourceVersion can be answered that way), a garbled stream, or an API whose history cannot
contain what was seen: a BOOKMARK or event whose resourceVersion is below the highest one seen
means the API server was replaced (restored from a backup, or another cluster behind the same
address), and resuming would keep objects that no longer exist for ever.

How it talks to the API: the stream is split on b"\\n" (client.py) and each line dispatched on
its `type` before a model is built; `timeoutSeconds` is random in 240–540 s so watchers spread
their reconnects, plus a client-side inactivity deadline pushed forward by every line; retries back
off from 0.8 s ×2 to 30 s with jitter (client-go's numbers), reset after 2 min healthy, and honour
Retry-After.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn, Protocol

import pydantic
import trio
from pydantic_core import from_json

from k8sgw.kubeapi.client import KubeClient, error_from_status, parse_status
from k8sgw.kubeapi.errors import (
    ApiProtocolError,
    ApiStatusError,
    ApiUnreachableError,
    ForbiddenError,
    GoneError,
    KubeError,
    NotFoundError,
    ServerError,
    TooManyRequestsError,
    UnauthorizedError,
)
from k8sgw.kubeapi.events import Deleted, KubeEvent, Synced, SyncPage, Upserted
from k8sgw.kubeapi.kinds import Kind
from k8sgw.kubeapi.models import KubeObject

__all__ = [
    "HistoryReplacedError",
    "RetryPolicy",
    "Watch",
    "WatchClosedEarlyError",
    "WatchObserver",
    "WatchStalledError",
    "WatchState",
    "rbac_rule",
    "list_objects",
    "list_then_watch",
    "stream_watch",
    "watch_forever",
]

logger = logging.getLogger(__name__)

EventsSend = trio.MemorySendChannel[KubeEvent]


class WatchObserver(Protocol):
    """Who hears about a watcher's progress (ops/metrics.py's per-store observer implements it).

    Calls are synchronous and must be cheap: they happen on the watch path.
    """

    def event_seen(self, kind: str) -> None:
        """A complete list, an event or a BOOKMARK arrived: the kind is current as of now."""

    def watch_restarted(self, kind: str) -> None:
        """A watch request is being opened again (after a stream ended, was cut, stalled or failed)."""

    def relisted(self, kind: str) -> None:
        """A full list is being made again after the first one (410 Gone, a garbled stream, ...)."""

    def kind_unavailable(self, kind: Kind, problem: str | None) -> None:
        """"absent": the API serves none of the kind's versions; "forbidden": RBAC forbids listing
        it (at this version); None: it lists again."""


class _NullObserver:
    def event_seen(self, kind: str) -> None:
        pass

    def watch_restarted(self, kind: str) -> None:
        pass

    def relisted(self, kind: str) -> None:
        pass

    def kind_unavailable(self, kind: Kind, problem: str | None) -> None:
        pass


NULL_OBSERVER: WatchObserver = _NullObserver()
"""The default observer: does nothing."""


class WatchStalledError(ApiUnreachableError):
    """Nothing arrived on a watch for `inactivity_timeout` seconds: a half-open connection."""


class WatchClosedEarlyError(ApiUnreachableError):
    """A watch closed within `short_watch_interval` without a single line: counts as an error."""


class HistoryReplacedError(KubeError):
    """The API answered with a resourceVersion below one it gave before: its history is not the
    one this watcher followed (the API server was replaced), so only a relist is right."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a watcher paces itself. Times in seconds.

    Attributes:
        initial_backoff: the first retry delay (client-go's 800 ms).
        factor: each consecutive failure multiplies the delay by this.
        max_backoff: the cap; 30 s keeps a recovered API noticed quickly.
        jitter: the random spread as a fraction of the delay: a delay d becomes uniform in
            [d·(1 − jitter/2), d·(1 + jitter/2)], capped at max_backoff. 1.0 gives 0.5d–1.5d, so
            watchers of many kinds (and replicas) do not reconnect in lockstep; 0 is exact (tests).
        reset_after: after this long healthy (a list or a stream open and no error since), the
            next failure starts again from initial_backoff.
        inactivity_timeout: a watch that delivers no line for this long is treated as a dropped
            stream and resumed. The watch cache sends each watcher a BOOKMARK about once a minute
            when allowWatchBookmarks=true (apiserver cacher `bookmarkFrequency`), so 150 s is two
            missed bookmarks plus margin for a loaded apiserver. On a server that sends no
            bookmarks (watch cache off) a quiet kind costs one cheap re-watch from the same
            resourceVersion every 150 s; a half-open connection, which TCP alone may not notice
            for many minutes, costs at most 150 s of staleness.
        watch_timeout_range: `timeoutSeconds` is drawn uniformly from this range per watch, so the
            server ends streams itself and watchers spread their reconnects.
        short_watch_interval: a watch that ends sooner than this with no line at all is an error
            (backoff, then relist): prevents a busy loop against a server that closes at once.
        absent_recheck_interval: how often a kind whose API is not served (404) is looked for
            again, so a CRD installed later is picked up without a restart.
        forbidden_recheck_interval: how often a kind RBAC forbids (403) is tried again, so a
            ClusterRole fixed later takes effect without a restart. One WARNING is logged per
            forbidden spell, not one per try.
        request_timeout: seconds one LIST request (one page) may take, headers and body. An API
            server that accepts the connection and never answers would otherwise hold the watcher
            until the HTTP read timeout (60 s, the same default); watches are bounded by
            inactivity_timeout instead.
        list_page_size: `limit` per LIST page; smaller pages bound the memory one page takes.
    """

    initial_backoff: float = 0.8
    factor: float = 2.0
    max_backoff: float = 30.0
    jitter: float = 1.0
    reset_after: float = 120.0
    inactivity_timeout: float = 150.0
    watch_timeout_range: tuple[int, int] = (240, 540)
    short_watch_interval: float = 1.0
    absent_recheck_interval: float = 60.0
    forbidden_recheck_interval: float = 60.0
    request_timeout: float = 60.0
    list_page_size: int = 500

    def backoff(self, failures: int, rng: random.Random | None = None) -> float:
        """The delay before retry number `failures` (0-based) after consecutive failures."""
        delay = self.initial_backoff
        for _ in range(failures):
            delay *= self.factor
            if delay >= self.max_backoff:
                break
        delay = min(delay, self.max_backoff)
        if self.jitter:
            delay *= 1.0 + self.jitter * ((rng or random).random() - 0.5)
        return max(0.0, min(delay, self.max_backoff))


@dataclass
class WatchState:
    """What one watcher carries between attempts; owned by that watcher's task only.

    Attributes:
        resource_version: where the next watch resumes; None means "list first".
        healthy_since: trio time of the first success (list done or stream open) since the last
            error; None right after an error.
        synced_once: a Synced for this kind has been sent (the indexer counts it as ready).
        last_event_at: trio time of the last complete list, event or BOOKMARK; None before the
            first. How stale the kind may be: during an outage it stops moving (the metric
            k8sgw_watch_last_event_age_seconds is fed from the same points via WatchObserver).
        watches_opened: watch requests opened so far; every one after the first is a restart.
        highest_seen: the highest numeric resourceVersion the API has given (list, event or
            BOOKMARK); None before the first or where resourceVersions are not numbers.
        replaced: the next list follows an API whose history was replaced (told to the indexer).
    """

    resource_version: str | None = None
    healthy_since: float | None = None
    synced_once: bool = False
    last_event_at: float | None = None
    watches_opened: int = 0
    highest_seen: int | None = None
    replaced: bool = False

    def mark_healthy(self) -> None:
        if self.healthy_since is None:
            self.healthy_since = trio.current_time()

    def mark_current(self, kind: str, observer: WatchObserver) -> None:
        self.last_event_at = trio.current_time()
        observer.event_seen(kind)

    def advance(self, kind: str, resource_version: str) -> None:
        """Resume from `resource_version` (of an event or BOOKMARK) from now on.

        Raises:
            HistoryReplacedError: it is below one seen before. etcd revisions, which every
                Kubernetes API server hands out as resourceVersions, only ever grow within one
                cluster; opaque (non-numeric) ones are not compared.
        """
        number = _rv_number(resource_version)
        if number is not None and self.highest_seen is not None and number < self.highest_seen:
            raise HistoryReplacedError(
                f"watch {kind}: the API answered resourceVersion {resource_version} after "
                f"{self.highest_seen}: its history is not the one watched (API server replaced?)"
            )
        self.resource_version = resource_version
        if number is not None:
            self.highest_seen = number

    def listed(self, kind: str, resource_version: str) -> None:
        """A complete list at `resource_version`: resume from it; it is the new reference."""
        number = _rv_number(resource_version)
        if number is not None and self.highest_seen is not None and number < self.highest_seen:
            logger.warning(
                "watch %s: listed at resourceVersion %s, below %d seen before: the API server was "
                "replaced; the list replaces every %s", kind, resource_version, self.highest_seen, kind,
            )
            self.replaced = True
        self.resource_version = resource_version
        self.highest_seen = number


def _rv_number(resource_version: str) -> int | None:
    return int(resource_version) if resource_version.isdecimal() and resource_version.isascii() else None


@dataclass(frozen=True)
class Watch:
    """One kind watched for the indexer: what every layer of the watcher needs.

    Attributes:
        client: the API client (shared by the watchers of one k8s_gateway).
        kind: what to watch, in all namespaces.
        events: where events go; each send is awaited (backpressure from the indexer).
        label_selector: only objects matching it ("app=web"); objects leaving it arrive as DELETED.
        policy: backoff, stall detection and watch timeouts.
        observer: told of every list, event and BOOKMARK, every watch re-opened and every relist.
    """

    client: KubeClient
    kind: Kind
    events: EventsSend
    label_selector: str | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    observer: WatchObserver = NULL_OBSERVER


def _meta(obj: Any) -> Mapping[str, Any]:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


def _ns_name(obj: Any) -> str:
    meta = _meta(obj)
    ns, name = meta.get("namespace") or "", meta.get("name") or "?"
    return f"{ns}/{name}" if ns else str(name)


def _validate(kind: Kind, obj: Any, context: str) -> KubeObject | None:
    """The model for a raw object, or None (logged at WARNING with namespace/name) if invalid."""
    try:
        return kind.model.model_validate(obj)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<object>'}: {err['msg']}" for err in exc.errors()
        )
        logger.warning("%s %s %s: invalid object skipped: %s", context, kind.name, _ns_name(obj), problems)
        return None


def _is_rv_too_large(exc: ApiStatusError) -> bool:
    """504 ResourceVersionTooLarge: the RV is newer than this apiserver has seen (it lags behind
    etcd, or it is not the API server the RV came from)."""
    return exc.code == 504 and "too large resource version" in exc.message.lower()


async def list_objects(
    client: KubeClient,
    kind: Kind,
    *,
    label_selector: str | None = None,
    page_size: int = 500,
    request_timeout: float | None = None,
    on_page: Callable[[tuple[KubeObject, ...], bool], Awaitable[None]] | None = None,
) -> tuple[tuple[KubeObject, ...], str]:
    """LIST every object of `kind` (all namespaces), page by page.

    Args:
        client: the API client.
        kind: what to list.
        label_selector: a Kubernetes label selector ("app=web"), or None for all.
        page_size: `limit` per page; the server may return fewer.
        request_timeout: seconds each page may take (None: the client's own timeouts only); a
            page that takes longer raises ApiUnreachableError.
        on_page: if given, each page's objects go there as they arrive (with True for the first
            page of a list attempt) instead of being collected, so a large kind is never in
            memory whole; the returned objects are then ().

    Returns:
        The valid objects and the list's resourceVersion (to watch from). Items that fail
        validation are logged at WARNING with namespace/name and skipped.

    Error handling:
        A 410 on a `continue` token (it expired, after ~5–15 min) restarts the list from scratch as
        one unpaginated request, as client-go's pager does, so a slow list cannot loop. Anything
        else propagates.
    """
    path = kind.collection_path()
    objects: list[KubeObject] = []
    resource_version = ""
    token: str | None = None
    limit: int | None = page_size
    first = True
    while True:
        params = {"labelSelector": label_selector, "limit": limit, "continue": token}
        try:
            with trio.move_on_after(math.inf if request_timeout is None else request_timeout) as scope:
                page = await client.get_json(path, params)
            if scope.cancelled_caught:
                raise ApiUnreachableError(f"list {kind.name}: no answer within {request_timeout:g}s")
        except GoneError:
            if token is None:
                raise
            logger.info("list %s: continue token expired; listing again in one request", kind.name)
            objects, resource_version, token, limit, first = [], "", None, None, True
            continue
        meta = page.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        if token is None:
            # Every page carries the first page's snapshot resourceVersion.
            resource_version = str(meta.get("resourceVersion") or "")
        items = page.get("items") or []
        if not isinstance(items, list):
            raise ApiProtocolError(f"list {kind.name}: items is not a list")
        valid = [obj for item in items if (obj := _validate(kind, item, "list")) is not None]
        if on_page is None:
            objects.extend(valid)
        else:
            await on_page(tuple(valid), first)
            first = False
        token = meta.get("continue") or None
        if token is None:
            break
    if not resource_version:
        raise ApiProtocolError(f"list {kind.name}: no metadata.resourceVersion to watch from")
    return tuple(objects), resource_version


async def stream_watch(watch: Watch, state: WatchState) -> int:
    """Run one watch request from `state.resource_version` until the server ends it.

    Sends Upserted/Deleted for each ADDED/MODIFIED/DELETED and advances
    `state.resource_version` after each event and BOOKMARK (also past invalid objects, which are
    logged at WARNING and skipped).

    Returns:
        The number of lines received, when the server ended the stream normally.

    Raises:
        GoneError: an ERROR event (or answer) 410: the resourceVersion is too old; relist.
        HistoryReplacedError: a resourceVersion below one seen before; relist.
        ApiStatusError: any other ERROR event or error status.
        WatchStalledError: no line for `policy.inactivity_timeout` seconds.
        ApiUnreachableError: the connection failed or was cut.
        ApiProtocolError: a line that is not a JSON watch event.

    Cancellation: safe at any point; only a line handed to `events_send` counts as delivered.
    """
    if state.resource_version is None:
        raise ValueError("stream_watch needs a resourceVersion (list first)")
    client, kind, policy, observer = watch.client, watch.kind, watch.policy, watch.observer
    params = {
        "watch": True,
        "resourceVersion": state.resource_version,
        "allowWatchBookmarks": True,
        "timeoutSeconds": random.randint(*policy.watch_timeout_range),
        "labelSelector": watch.label_selector,
    }
    received = 0
    if state.watches_opened:
        observer.watch_restarted(kind.name)
    state.watches_opened += 1
    # A timeout is normal flow here, not an error: the deadline covers the request and headers too, and is
    # pushed forward by every line. It is lifted while an event waits for the indexer, so a slow
    # consumer is never mistaken for a silent server.
    with trio.move_on_after(policy.inactivity_timeout) as scope:
        async with client.stream_lines(kind.collection_path(), params) as lines:
            state.mark_healthy()
            async for line in lines:
                received += 1
                scope.deadline = math.inf
                await _dispatch(kind, watch.events, state, line)
                state.mark_current(kind.name, observer)
                scope.deadline = trio.current_time() + policy.inactivity_timeout
    if scope.cancelled_caught:
        raise WatchStalledError(
            f"watch {kind.name}: no data for {policy.inactivity_timeout:.0f}s "
            f"(resourceVersion {state.resource_version})"
        )
    return received


async def _dispatch(kind: Kind, events_send: EventsSend, state: WatchState, line: bytes) -> None:
    """Handle one watch line: look at `type` first, then build only the model that type needs."""
    try:
        event = from_json(line)
    except ValueError as exc:
        raise ApiProtocolError(f"watch {kind.name}: not JSON: {line[:200]!r}") from exc
    if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
        raise ApiProtocolError(f"watch {kind.name}: not a watch event: {line[:200]!r}")
    etype, obj = event.get("type"), event["object"]

    if etype == "ERROR":
        status = parse_status(obj)
        if status is None:
            raise ApiProtocolError(f"watch {kind.name}: ERROR without a Status: {line[:200]!r}")
        error = error_from_status(status)
        if not (isinstance(error, GoneError) or _is_rv_too_large(error)):
            # The server cannot go on with this watch from here, and a resume from the same
            # revision meets the same error again (etcd's "PrevKv=nil" at a compacted revision):
            # the retry relists, as client-go's reflector does after any watch error.
            state.resource_version = None
        raise error

    rv = _meta(obj).get("resourceVersion")
    if etype == "BOOKMARK":
        if rv:
            state.advance(kind.name, str(rv))
        return
    if rv:  # before the event goes out: one from a replaced API must not reach the indexer
        state.advance(kind.name, str(rv))
    if etype in ("ADDED", "MODIFIED"):
        model = _validate(kind, obj, "watch")
        if model is not None:
            await events_send.send(Upserted(kind.name, model))
    elif etype == "DELETED":
        meta = _meta(obj)
        name = meta.get("name")
        if isinstance(name, str) and name:
            await events_send.send(Deleted(kind.name, str(meta.get("namespace") or ""), name, str(rv or "")))
        else:
            logger.warning("watch %s: DELETED without metadata.name skipped", kind.name)
    else:
        logger.warning("watch %s: unknown event type %r skipped", kind.name, etype)


async def list_then_watch(watch: Watch, state: WatchState | None = None) -> None:
    """List (unless `state` can resume) as SyncPages and a Synced, then watch and re-watch from the last RV.

    Args:
        watch: what to watch and how.
        state: carried between calls by watch_forever so that a retry resumes the watch without
            relisting; a fresh WatchState() (the default) lists first.

    Returns:
        When a relist is due: a watch got 410 Gone or 504 ResourceVersionTooLarge after the
        resourceVersion had moved on from the list's (or was resumed from an earlier call), or
        the API's history was replaced. `state.resource_version` is then None, and calling again
        relists at once.

    Raises:
        GoneError (or the 504 ServerError): the same, but still at the resourceVersion of the list
            just made, where it should never happen: the caller backs off before relisting.
        WatchClosedEarlyError: a watch ended within `short_watch_interval` with nothing in it;
            `state.resource_version` is cleared (a stale RV can be answered so), so the retry
            relists.
        Any error of list_objects / stream_watch; `state` keeps the resume point (a protocol error
            clears it: the stream's position is not known; so does an ERROR event other than 410).
    """
    state = state if state is not None else WatchState()
    client, kind, events_send, observer = watch.client, watch.kind, watch.events, watch.observer
    listed_rv: str | None = None
    if state.resource_version is None:
        if state.synced_once:
            observer.relisted(kind.name)
        listed = 0

        async def send_page(objects: tuple[KubeObject, ...], first: bool) -> None:
            nonlocal listed
            listed = len(objects) if first else listed + len(objects)
            await events_send.send(SyncPage(kind.name, objects, first))

        # Pages go to the indexer as they arrive; the Synced that follows completes the list.
        _, rv = await list_objects(
            client,
            kind,
            label_selector=watch.label_selector,
            page_size=watch.policy.list_page_size,
            request_timeout=watch.policy.request_timeout,
            on_page=send_page,
        )
        state.mark_healthy()
        state.listed(kind.name, rv)
        await events_send.send(Synced(kind.name, (), str(rv or ""), history_replaced=state.replaced))
        state.replaced = False
        state.synced_once = True
        state.mark_current(kind.name, observer)
        logger.info(
            "watch %s: listed %d objects (%s) at resourceVersion %s", kind.name, listed, kind.api_version, rv
        )
        listed_rv = rv
    while True:
        started = trio.current_time()
        try:
            received = await stream_watch(watch, state)
        except HistoryReplacedError as exc:
            logger.warning("%s; relisting", exc)
            state.resource_version = None
            state.replaced = True
            return
        except ApiStatusError as exc:
            if not (isinstance(exc, GoneError) or _is_rv_too_large(exc)):
                raise
            stale = state.resource_version
            state.resource_version = None
            if stale == listed_rv:
                raise  # not one event since a fresh list: relisting at once could loop for ever
            logger.info(
                "watch %s: resourceVersion %s no longer usable (%s); relisting", kind.name, stale, exc
            )
            return
        except ApiProtocolError:
            state.resource_version = None
            raise
        duration = trio.current_time() - started
        if received == 0 and duration < watch.policy.short_watch_interval:
            state.resource_version = None
            raise WatchClosedEarlyError(f"watch {kind.name}: closed after {duration:.1f}s without any event")
        logger.debug(
            "watch %s: stream ended after %.1fs, %d lines; resuming from resourceVersion %s",
            kind.name,
            duration,
            received,
            state.resource_version,
        )


# Failures that heal by themselves (or by an operator's fix) and are retried with backoff.
_RETRIED = (
    ApiUnreachableError,
    ApiProtocolError,
    ServerError,
    TooManyRequestsError,
    UnauthorizedError,
    GoneError,
)


def _describe(kind: Kind, exc: KubeError) -> tuple[int, str]:
    """Log level and text for a retried failure (no traceback: these are expected)."""
    if isinstance(exc, UnauthorizedError):
        return logging.ERROR, f"{exc}: the API refused our credentials (token expired or revoked?)"
    text = str(exc)
    return logging.WARNING, text.removeprefix(f"watch {kind.name}: ")


def rbac_rule(kind: Kind) -> str:
    """The RBAC rule a watcher of `kind` needs, as a ClusterRole would spell it."""
    return f'apiGroups: ["{kind.group}"], resources: ["{kind.plural}"], verbs: ["list", "watch"]'


async def watch_forever(watch: Watch, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> NoReturn:
    """Keep the indexer's view of `kind` current, whatever the API does.

    Sends each list page by page (SyncPage) closed by a Synced, first and on relists, then
    Upserted/Deleted. Starts (`task_status.started()`) at once: readiness is the indexer's
    business, via Synced.

    Args:
        watch: what to watch and how. When the kind's `version` is not served (404) each of
            `kind.fallback_versions` is tried in turn, at once; events always carry `kind.name`.
            The observer hears of every list, event and BOOKMARK (event_seen), every watch
            re-opened (watch_restarted) and every relist (relisted), for the k8sgw_watch_* metrics.

    Returns:
        Never returns unless cancelled.

    Error handling:
        The supervision point. ApiUnreachableError (incl. stalls and cut streams), 5xx, 429 (at
        least its Retry-After), 401, 410 after a fresh list, and protocol errors are logged once
        per retry and retried with jittered, capped exponential backoff; the kind keeps its last
        state meanwhile. A retry resumes the watch from the last resourceVersion when it can.
        404 (no served version) means the kind's API is not installed: it is logged once at INFO,
        reported as an empty Synced (so it neither blocks readiness nor keeps objects of a removed
        CRD) and looked for again every absent_recheck_interval. 403 is one WARNING naming the
        missing RBAC rule; a kind that never listed is reported as an empty Synced (it does not
        block readiness), one that did keeps its last state; it is tried again every
        forbidden_recheck_interval. Any other error (another 4xx, a credential plugin that fails)
        is logged at ERROR and retried at max_backoff: a watcher never ends the server.
    """
    state = WatchState()
    failures = 0
    kind, events_send, policy, observer = watch.kind, watch.events, watch.policy, watch.observer
    versions = kind.versions
    version_index = 0
    absent = forbidden = False
    task_status.started()
    while True:
        current = kind.at_version(versions[version_index]) if version_index else kind
        try:
            await list_then_watch(replace(watch, kind=current) if version_index else watch, state)
            continue  # a relist is due: no delay
        except NotFoundError:
            state = WatchState(
                synced_once=state.synced_once,
                last_event_at=state.last_event_at,
                watches_opened=state.watches_opened,
                highest_seen=state.highest_seen,
            )
            if version_index + 1 < len(versions):
                version_index += 1
                logger.debug(
                    "watch %s: %s is not served; trying %s",
                    kind.name, current.api_version, kind.at_version(versions[version_index]).api_version,
                )
                continue
            version_index = 0
            if not absent:
                served = " or ".join(kind.at_version(v).api_version for v in versions)
                logger.info(
                    "watch %s: the API does not serve %s (%s); skipped, looking again every %.0fs",
                    kind.name, kind.resource, served, policy.absent_recheck_interval,
                )
                absent = True
                observer.kind_unavailable(kind, "absent")
                await events_send.send(Synced(kind.name, ()))
                state.synced_once = True
            await trio.sleep(policy.absent_recheck_interval)
            continue
        except ForbiddenError as exc:
            absent = False
            state.healthy_since = None
            if not forbidden:
                logger.warning(
                    "watch %s: %s; RBAC must allow list and watch on %s (ClusterRole rule: %s); "
                    "skipped, trying again every %.0fs",
                    kind.name, str(exc).removeprefix(f"watch {kind.name}: "), current.resource,
                    rbac_rule(current), policy.forbidden_recheck_interval,
                )
                forbidden = True
                observer.kind_unavailable(current, "forbidden")
                if not state.synced_once:
                    await events_send.send(Synced(kind.name, ()))
                    state.synced_once = True
            else:
                logger.debug("watch %s: still forbidden", kind.name)
            await trio.sleep(policy.forbidden_recheck_interval)
            continue
        except _RETRIED as exc:
            error: KubeError = exc
        except KubeError as exc:
            logger.error("watch %s: %s; retry in %.1fs", kind.name, exc, policy.max_backoff)
            await trio.sleep(policy.max_backoff)
            continue
        finally:
            # Only a list that got through ends "absent"/"forbidden" (then the next 404/403 logs again).
            if state.healthy_since is not None:
                if absent or forbidden:
                    observer.kind_unavailable(kind, None)
                absent = forbidden = False
        now = trio.current_time()
        if state.healthy_since is not None and now - state.healthy_since >= policy.reset_after:
            failures = 0
        state.healthy_since = None
        delay = policy.backoff(failures)
        failures += 1
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            delay = max(delay, retry_after)
        level, text = _describe(kind, error)
        resume = (
            f"resume from resourceVersion {state.resource_version}"
            if state.resource_version is not None
            else "relist"
        )
        logger.log(level, "watch %s: %s; %s in %.1fs", kind.name, text, resume, delay)
        await trio.sleep(delay)
