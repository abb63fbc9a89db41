"""list/watch against a fake API (httpx.MockTransport) whose streams the test feeds line by line.

Every test runs on trio's autojump clock: backoff delays, stalls and timeouts are asserted as exact
virtual times, with no real sleeping. The fake records each request with the virtual time it came.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import random
from collections.abc import AsyncIterator

import httpx
import pytest
import trio
import trio.testing

from k8sgw.devapi.errors import status_body
from k8sgw.kubeapi.client import KubeClient
from k8sgw.kubeapi.connection import Connection
from k8sgw.kubeapi.errors import ApiUnreachableError, GoneError
from k8sgw.kubeapi.events import Deleted, KubeEvent, Synced, SyncPage, Upserted
from k8sgw.kubeapi.kinds import INGRESS, KINDS, SERVICE
from k8sgw.kubeapi.watch import (
    RetryPolicy,
    Watch,
    WatchState,
    list_objects,
    list_then_watch,
    stream_watch,
    watch_forever,
)
from tests.publicapi import public_callables

POLICY = RetryPolicy(jitter=0.0)  # exact delays: 0.8, 1.6, 3.2, ... capped at 30


# --- the fake API --------------------------------------------------------------------------------


class ChannelStream(httpx.AsyncByteStream):
    """A response body fed by the test: bytes chunks from a channel; an exception item is raised."""

    def __init__(self, recv: trio.MemoryReceiveChannel[bytes | Exception]) -> None:
        self._recv = recv

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        try:
            item = await self._recv.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
        if isinstance(item, Exception):
            raise item
        return item


class FakeApi:
    """Answers requests in order with replies queued by the test; records (time, request)."""

    def __init__(self) -> None:
        self.log: list[tuple[float, httpx.Request]] = []
        self._send, self._recv = trio.open_memory_channel[httpx.Response](math.inf)
        self.transport = httpx.MockTransport(self._handle)
        self._logged = trio.Event()

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        self.log.append((trio.current_time(), request))
        self._logged.set()
        self._logged = trio.Event()
        return await self._recv.receive()

    async def wait_requests(self, count: int) -> None:
        """Wait until `count` requests have arrived in all."""
        while len(self.log) < count:
            await self._logged.wait()

    def reply(self, response: httpx.Response) -> None:
        self._send.send_nowait(response)

    def list(self, items: list[dict], rv: str, cont: str | None = None) -> None:
        meta = {"resourceVersion": rv, **({"continue": cont} if cont else {})}
        self.reply(httpx.Response(200, json={"kind": "IngressList", "metadata": meta, "items": items}))

    def status(self, code: int, reason: str, message: str = "", headers: dict | None = None) -> None:
        body = {"kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": message}
        self.reply(httpx.Response(code, json=body, headers=headers))

    def watch(self) -> trio.MemorySendChannel[bytes | Exception]:
        """Queue a 200 watch stream; returns the channel that feeds its body (close it to end)."""
        send, recv = trio.open_memory_channel[bytes | Exception](math.inf)
        self.reply(httpx.Response(200, stream=ChannelStream(recv)))
        return send

    @property
    def params(self) -> list[dict[str, str]]:
        return [dict(request.url.params) for _, request in self.log]

    @property
    def times(self) -> list[float]:
        return [t for t, _ in self.log]


def ing(name: str, rv: str = "1", ns: str = "default", host: str | None = None, **meta) -> dict:
    return {
        "metadata": {"name": name, "namespace": ns, "resourceVersion": rv, **meta},
        "spec": {"rules": [{"host": host or f"{name}.example.org"}]},
    }


def line(etype: str, obj: dict) -> bytes:
    return json.dumps({"type": etype, "object": obj}).encode() + b"\n"


def bookmark(rv: str) -> bytes:
    return line(
        "BOOKMARK",
        {"kind": "Ingress", "apiVersion": "networking.k8s.io/v1", "metadata": {"resourceVersion": rv}},
    )


def error_line(code: int, reason: str, message: str) -> bytes:
    return line("ERROR", status_body(code, reason, message))


def is_list(params: dict[str, str]) -> bool:
    return "watch" not in params and "resourceVersion" not in params


def keys(objects) -> list[tuple[str, str]]:
    return sorted(obj.key for obj in objects)


class WholeLists:
    """The events a watcher sends, with each list's SyncPages folded into its closing Synced.

    The watcher hands a list over page by page (to keep memory flat); these tests speak of whole
    lists. The first test below checks the pages themselves.
    """

    def __init__(self, recv: trio.MemoryReceiveChannel[KubeEvent]) -> None:
        self.recv = recv
        self.pages: list[SyncPage] = []

    def _fold(self, event: KubeEvent) -> KubeEvent | None:
        if isinstance(event, SyncPage):
            self.pages = [event] if event.first else [*self.pages, event]
            return None
        if isinstance(event, Synced):
            objects = tuple(o for page in self.pages for o in page.objects) + event.objects
            self.pages = []
            return Synced(event.kind, objects, event.resource_version)
        return event

    async def receive(self) -> KubeEvent:
        while (event := self._fold(await self.recv.receive())) is None:
            pass
        return event

    def receive_nowait(self) -> KubeEvent:
        while (event := self._fold(self.recv.receive_nowait())) is None:
            pass
        return event


@contextlib.asynccontextmanager
async def watching(
    api: FakeApi, kind=INGRESS, policy: RetryPolicy = POLICY, label_selector: str | None = None
) -> AsyncIterator[trio.MemoryReceiveChannel[KubeEvent]]:
    """Run watch_forever against `api` for the body of the block; yields the events channel."""
    events_send, events_recv = trio.open_memory_channel[KubeEvent](0)
    conn = Connection("https://api.example.org:6443", source="test")
    async with KubeClient(conn, transport=api.transport) as kube, trio.open_nursery() as nursery:
        await nursery.start(
            functools.partial(
                watch_forever, Watch(kube, kind, events_send, label_selector=label_selector, policy=policy)
            )
        )
        yield WholeLists(events_recv)
        nursery.cancel_scope.cancel()


# --- tests ---------------------------------------------------------------------------------------


async def test_list_pages_reach_the_indexer_as_they_arrive(autojump_clock):
    api = FakeApi()
    api.list([ing("a")], rv="10", cont="tok-1")
    api.list([ing("b")], rv="10")
    api.watch()
    events_send, events_recv = trio.open_memory_channel[KubeEvent](10)
    conn = Connection("https://api.example.org:6443")
    with trio.fail_after(60):
        async with KubeClient(conn, transport=api.transport) as kube, trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(watch_forever, Watch(kube, INGRESS, events_send, policy=POLICY)))
            first, second, done = [await events_recv.receive() for _ in range(3)]
            nursery.cancel_scope.cancel()
    assert (first.first, keys(first.objects)) == (True, [("default", "a")])
    assert (second.first, keys(second.objects)) == (False, [("default", "b")])
    assert isinstance(done, Synced) and (done.objects, done.resource_version) == ((), "10")


async def test_paginated_list_then_events(autojump_clock):
    api = FakeApi()
    api.list([ing("a"), ing("b", ns="other")], rv="10", cont="tok-1")
    api.list([ing("c")], rv="10")
    lines = api.watch()
    with trio.fail_after(60):
        async with watching(api, label_selector="app=web") as events:
            synced = await events.receive()
            assert isinstance(synced, Synced) and synced.kind == "Ingress"
            assert keys(synced.objects) == [("default", "a"), ("default", "c"), ("other", "b")]

            lines.send_nowait(line("ADDED", ing("d", rv="11")))
            upserted = await events.receive()
            assert isinstance(upserted, Upserted) and upserted.obj.key == ("default", "d")
            assert upserted.obj.spec.rules[0].host == "d.example.org"
            lines.send_nowait(line("MODIFIED", ing("d", rv="12", host="e.example.org")))
            assert (await events.receive()).obj.spec.rules[0].host == "e.example.org"
            lines.send_nowait(line("DELETED", ing("a", rv="13")))
            assert await events.receive() == Deleted("Ingress", "default", "a", "13")

    p = api.params
    assert p[0] == {"limit": "500", "labelSelector": "app=web"}
    assert p[1] == {"limit": "500", "continue": "tok-1", "labelSelector": "app=web"}
    assert api.log[0][1].url.path == "/apis/networking.k8s.io/v1/ingresses"
    timeout_seconds = int(p[2].pop("timeoutSeconds"))
    assert 240 <= timeout_seconds <= 540
    assert p[2] == {
        "watch": "true",
        "resourceVersion": "10",
        "allowWatchBookmarks": "true",
        "labelSelector": "app=web",
    }
    assert len(p) == 3


async def test_resume_from_last_rv_and_bookmark_without_relist(autojump_clock):
    api = FakeApi()
    api.list([ing("a")], rv="10")
    first = api.watch()
    second = api.watch()
    with trio.fail_after(60):
        async with watching(api) as events:
            assert isinstance(await events.receive(), Synced)
            first.send_nowait(line("ADDED", ing("b", rv="11")))
            first.send_nowait(bookmark("15"))
            first.close()  # the server ends the stream (timeoutSeconds)
            assert (await events.receive()).obj.key == ("default", "b")
            second.send_nowait(line("MODIFIED", ing("b", rv="16")))
            assert isinstance(await events.receive(), Upserted)
            await trio.testing.wait_all_tasks_blocked()
            assert trio.current_time() == 0  # no backoff for a normal end
    assert [is_list(p) for p in api.params] == [True, False, False]
    assert api.params[2]["resourceVersion"] == "15"


async def test_410_error_event_relists_and_drops_vanished(autojump_clock, caplog):
    caplog.set_level(logging.INFO, logger="k8sgw.kubeapi.watch")
    api = FakeApi()
    api.list([ing("a"), ing("b")], rv="10")
    first = api.watch()
    api.list([ing("a")], rv="30")  # b was deleted while we could not see it
    api.watch()
    with trio.fail_after(60):
        async with watching(api) as events:
            assert keys((await events.receive()).objects) == [("default", "a"), ("default", "b")]
            first.send_nowait(line("MODIFIED", ing("a", rv="11")))
            await events.receive()
            first.send_nowait(error_line(410, "Expired", "too old resource version: 11 (25)"))
            relisted = await events.receive()
            assert isinstance(relisted, Synced)
            assert keys(relisted.objects) == [("default", "a")]
            await trio.testing.wait_all_tasks_blocked()
            assert trio.current_time() == 0  # relist at once: the RV had moved on since the list
    p = api.params
    assert [is_list(x) for x in p] == [True, False, True, False]
    assert "resourceVersion" not in p[2] and "continue" not in p[2]
    assert p[3]["resourceVersion"] == "30"
    assert any("relisting" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "error",
    [
        error_line(410, "Expired", "too old resource version: 10 (25)"),
        error_line(504, "Timeout", "Too large resource version: 10, current: 5"),
    ],
)
async def test_gone_right_after_list_backs_off_then_relists(autojump_clock, error):
    api = FakeApi()
    api.list([ing("a")], rv="10")
    api.watch().send_nowait(error)
    api.list([ing("a")], rv="40")
    api.watch()
    with trio.fail_after(60):
        async with watching(api) as events:
            assert isinstance(await events.receive(), Synced)
            assert isinstance(await events.receive(), Synced)
            assert trio.current_time() == pytest.approx(0.8)
    assert [is_list(x) for x in api.params] == [True, False, True, False]
    assert api.times[2] == pytest.approx(0.8)


async def test_split_event_and_unicode_separators_inside_strings(autojump_clock):
    api = FakeApi()
    api.list([], rv="10")
    lines = api.watch()
    tricky = "line\u2028sep\u0085next\u2029para"
    event = json.dumps(
        {"type": "ADDED", "object": ing("u", rv="11", annotations={"note": tricky})}, ensure_ascii=False
    ).encode("utf-8")
    cut = event.index("\u2028".encode()) + 1  # split inside the 3-byte U+2028
    with trio.fail_after(60):
        async with watching(api) as events:
            assert (await events.receive()).objects == ()
            for chunk in (event[:7], event[7:cut], event[cut:], b"\n"):
                lines.send_nowait(chunk)
            got = await events.receive()
            assert got.obj.metadata.annotations["note"] == tricky


async def test_invalid_objects_skipped_with_warning(autojump_clock, caplog):
    caplog.set_level(logging.WARNING, logger="k8sgw.kubeapi.watch")
    api = FakeApi()
    api.list([ing("good"), ing("bad-list", ns="prod", labels={"x": 1})], rv="10")
    first = api.watch()
    api.watch()
    with trio.fail_after(60):
        async with watching(api) as events:
            assert keys((await events.receive()).objects) == [("default", "good")]
            first.send_nowait(line("ADDED", ing("ok", rv="11")))
            first.send_nowait(
                line(
                    "ADDED",
                    {
                        "metadata": {"name": "bad-watch", "namespace": "qa", "resourceVersion": "12"},
                        "spec": {"rules": "not-a-list"},
                    },
                )
            )
            first.close()
            assert (await events.receive()).obj.key == ("default", "ok")
            await trio.testing.wait_all_tasks_blocked()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("prod/bad-list" in w and "Ingress" in w for w in warnings)
    assert any("qa/bad-watch" in w and "spec.rules" in w for w in warnings)
    assert api.params[2]["resourceVersion"] == "12"  # the RV advanced past the skipped object


async def test_401_logged_and_retried_with_backoff(autojump_clock, caplog):
    caplog.set_level(logging.WARNING, logger="k8sgw.kubeapi.watch")
    api = FakeApi()
    for _ in range(3):
        api.status(401, "Unauthorized", "Unauthorized")
    api.list([ing("a")], rv="10")
    api.watch()
    with trio.fail_after(60):
        async with watching(api) as events:
            assert isinstance(await events.receive(), Synced)
    assert api.times == pytest.approx([0, 0.8, 2.4, 5.6, 5.6])
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3  # one line per retry, no traceback
    assert all(r.exc_info is None for r in errors)
    assert errors[0].getMessage().startswith("watch Ingress: 401 Unauthorized")
    assert [r.getMessage().rsplit(" in ", 1)[1] for r in errors] == ["0.8s", "1.6s", "3.2s"]


async def test_403_names_the_rbac_rule_once_and_does_not_block_readiness(autojump_clock, caplog):
    api = FakeApi()
    for _ in range(3):
        api.status(403, "Forbidden", 'services is forbidden: User "system:serviceaccount:dns:k8sgw" cannot list')
    api.list([ing("a")], rv="10")  # the ClusterRole was fixed meanwhile (Service kind, any item)
    api.watch()
    with trio.fail_after(600):
        async with watching(api, kind=SERVICE) as events:
            skipped = await events.receive()
            assert isinstance(skipped, Synced) and skipped.objects == ()  # readiness is not blocked
            served = await events.receive()
            assert isinstance(served, Synced) and served.kind == "Service"
    interval = POLICY.forbidden_recheck_interval
    assert api.times[:4] == pytest.approx([0, interval, 2 * interval, 3 * interval])
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]  # one line, not one per try
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith("watch Service: 403 Forbidden: services is forbidden")
    assert "RBAC must allow list and watch on services" in message
    assert 'resources: ["services"], verbs: ["list", "watch"]' in message
    assert api.log[0][1].url.path == "/api/v1/services"


async def test_tlsroute_falls_back_to_v1alpha2_when_v1_is_not_served(autojump_clock):
    api = FakeApi()
    api.status(404, "NotFound", "the server could not find the requested resource")
    api.list([], rv="10")
    api.watch()
    with trio.fail_after(60):
        async with watching(api, kind=KINDS["TLSRoute"]) as events:
            synced = await events.receive()
    assert isinstance(synced, Synced) and synced.kind == "TLSRoute"
    assert [r.url.path for _, r in api.log[:2]] == [
        "/apis/gateway.networking.k8s.io/v1/tlsroutes",
        "/apis/gateway.networking.k8s.io/v1alpha2/tlsroutes",
    ]
    assert api.times[:2] == pytest.approx([0, 0])  # the fallback is tried at once


async def test_429_retry_after_honoured(autojump_clock):
    api = FakeApi()
    api.status(429, "TooManyRequests", "slow down", headers={"Retry-After": "7"})
    api.status(429, "TooManyRequests", "slow down")  # no hint: plain backoff (second step)
    api.list([], rv="10")
    api.watch()
    with trio.fail_after(60):
        async with watching(api) as events:
            assert isinstance(await events.receive(), Synced)
    assert api.times == pytest.approx([0, 7, 8.6, 8.6])


async def test_5xx_backoff_grows_and_caps(autojump_clock, caplog):
    api = FakeApi()
    for _ in range(9):
        api.status(503, "ServiceUnavailable", "etcd leader changed")
    api.list([], rv="10")
    api.watch()
    with trio.fail_after(600):
        async with watching(api) as events:
            assert isinstance(await events.receive(), Synced)
    gaps = [b - a for a, b in zip(api.times, api.times[1:], strict=False)]
    assert gaps[:9] == pytest.approx([0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30, 30, 30])
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 9


async def test_cut_stream_resumes_from_last_rv_and_backoff_resets_after_healthy(autojump_clock):
    api = FakeApi()
    api.list([ing("a")], rv="10")
    first = api.watch()
    api.status(503, "ServiceUnavailable", "apiserver restarting")
    third = api.watch()
    api.watch()
    with trio.fail_after(600):
        async with watching(api) as events:
            assert isinstance(await events.receive(), Synced)
            first.send_nowait(line("MODIFIED", ing("a", rv="11")))
            await events.receive()
            first.send_nowait(httpx.ReadError("connection reset"))  # cut at t=0
            await api.wait_requests(4)
            # the third watch opened at 0.8 + 1.6 = 2.4 and stays healthy (bookmarks) > reset_after
            for _ in range(3):
                third.send_nowait(bookmark("20"))
                await trio.sleep(60)
            cut_at = trio.current_time()
            third.send_nowait(httpx.ReadError("connection reset"))
            await api.wait_requests(5)
    assert [is_list(x) for x in api.params] == [True, False, False, False, False]
    assert [x.get("resourceVersion") for x in api.params[1:]] == ["10", "11", "11", "20"]
    # two failures in a row gave 0.8 then 1.6; after >120 s healthy the next delay is 0.8 again
    assert api.times[1:] == pytest.approx([0, 0.8, 2.4, cut_at + 0.8])
    assert cut_at - api.times[3] > POLICY.reset_after


async def test_inactivity_timeout_rewatches_from_last_rv(autojump_clock, caplog):
    api = FakeApi()
    api.list([], rv="10")
    first = api.watch()
    api.watch()
    with trio.fail_after(600):
        async with watching(api) as events:
            await events.receive()
            first.send_nowait(line("ADDED", ing("a", rv="11")))
            await events.receive()
            # ... then a half-open connection: nothing more, and no end of stream
            await api.wait_requests(3)
    assert [is_list(x) for x in api.params] == [True, False, False]
    assert api.params[2]["resourceVersion"] == "11"
    assert api.times[2] == pytest.approx(POLICY.inactivity_timeout + POLICY.initial_backoff)
    (stall,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        stall
        == "watch Ingress: no data for 150s (resourceVersion 11); resume from resourceVersion 11 in 0.8s"
    )


async def test_slow_consumer_is_not_a_stall(autojump_clock):
    api = FakeApi()
    api.list([], rv="10")
    lines = api.watch()
    with trio.fail_after(6000):
        async with watching(api) as events:
            await events.receive()
            lines.send_nowait(line("ADDED", ing("a", rv="11")))
            await trio.sleep(1000)  # the indexer is busy; the watcher waits in send()
            assert (await events.receive()).obj.key == ("default", "a")
            assert len(api.log) == 2


async def test_very_short_empty_watch_backs_off_and_relists(autojump_clock, caplog):
    api = FakeApi()
    api.list([], rv="10")
    api.watch().close()  # 200 and an immediate end, with nothing in it
    api.list([ing("a")], rv="12")
    api.watch()
    with trio.fail_after(60):
        async with watching(api) as events:
            assert (await events.receive()).objects == ()
            assert keys((await events.receive()).objects) == [("default", "a")]
    assert [is_list(x) for x in api.params] == [True, False, True, False]
    assert api.times == pytest.approx([0, 0, 0.8, 0.8])
    assert any("without any event" in r.getMessage() for r in caplog.records)


async def test_list_continue_410_restarts_from_scratch(autojump_clock):
    api = FakeApi()
    api.list([ing("a")], rv="10", cont="tok-1")
    api.status(410, "Expired", "The provided continue parameter is too old")
    api.list([ing("a"), ing("b")], rv="20")
    conn = Connection("https://api.example.org:6443")
    with trio.fail_after(60):
        async with KubeClient(conn, transport=api.transport) as kube:
            objects, rv = await list_objects(kube, INGRESS, page_size=1)
    assert keys(objects) == [("default", "a"), ("default", "b")] and rv == "20"
    assert api.params == [{"limit": "1"}, {"limit": "1", "continue": "tok-1"}, {}]


async def test_404_skips_the_kind_and_looks_again(autojump_clock, caplog):
    caplog.set_level(logging.INFO, logger="k8sgw.kubeapi.watch")
    api = FakeApi()
    api.status(404, "NotFound", "the server could not find the requested resource")
    api.status(404, "NotFound", "the server could not find the requested resource")
    api.list([ing("a")], rv="10")  # the CRD was installed meanwhile
    api.watch()
    with trio.fail_after(600):
        async with watching(api) as events:
            skipped = await events.receive()
            assert isinstance(skipped, Synced) and skipped.objects == ()  # does not block readiness
            served = await events.receive()
            assert isinstance(served, Synced) and keys(served.objects) == [("default", "a")]
    interval = POLICY.absent_recheck_interval
    assert api.times[:3] == pytest.approx([0, interval, 2 * interval])
    skips = [r for r in caplog.records if "does not serve" in r.getMessage()]
    assert len(skips) == 1  # logged once, not per recheck
    assert "ingresses.networking.k8s.io" in skips[0].getMessage()


async def test_other_client_errors_are_logged_and_retried_never_raised(autojump_clock, caplog):
    api = FakeApi()
    api.status(422, "Invalid", "labelSelector: Invalid value")
    api.list([ing("a")], rv="10")
    api.watch()
    with trio.fail_after(600):
        async with watching(api) as events:
            assert isinstance(await events.receive(), Synced)
    assert api.times[:2] == pytest.approx([0, POLICY.max_backoff])
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "422" in error.getMessage() and "watch Ingress" in error.getMessage()


async def test_list_then_watch_and_stream_watch_layers(autojump_clock):
    api = FakeApi()
    api.list([ing("a")], rv="10")
    first = api.watch()
    first.send_nowait(line("ADDED", ing("b", rv="11")))
    first.send_nowait(error_line(410, "Gone", "too old"))
    events_send, events_recv = trio.open_memory_channel[KubeEvent](10)
    state = WatchState()
    conn = Connection("https://api.example.org:6443")
    with trio.fail_after(60):
        async with KubeClient(conn, transport=api.transport) as kube:
            await list_then_watch(Watch(kube, INGRESS, events_send, policy=POLICY), state)  # returns: relist
            assert state.resource_version is None
            api.watch().send_nowait(error_line(500, "InternalError", "boom"))
            state.resource_version = "11"
            with pytest.raises(Exception, match="500 InternalError: boom"):
                await stream_watch(Watch(kube, INGRESS, events_send, policy=POLICY), state)
    events = WholeLists(events_recv)
    got = [events.receive_nowait() for _ in range(2)]
    assert isinstance(got[0], Synced) and got[1].obj.key == ("default", "b")


async def test_unreachable_is_retried(autojump_clock):
    api = FakeApi()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    calls = []
    original = api._handle

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(trio.current_time())
        if len(calls) <= 2:
            refuse(request)
        return await original(request)

    api.transport = httpx.MockTransport(handler)
    api.list([], rv="1")
    api.watch()
    with trio.fail_after(60):
        async with watching(api) as events:
            assert isinstance(await events.receive(), Synced)
    assert calls[:3] == pytest.approx([0, 0.8, 2.4])


def test_retry_policy_backoff_and_jitter():
    policy = RetryPolicy()
    assert (policy.initial_backoff, policy.factor, policy.max_backoff) == (0.8, 2.0, 30.0)
    assert policy.reset_after == 120.0 and policy.watch_timeout_range == (240, 540)
    exact = RetryPolicy(jitter=0.0)
    assert [exact.backoff(n) for n in range(8)] == pytest.approx([0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30, 30])
    assert exact.backoff(10_000) == 30.0  # no overflow
    rng = random.Random(7)
    for n in range(10):
        base = exact.backoff(n)
        delays = [policy.backoff(n, rng) for _ in range(200)]
        assert min(delays) >= base * 0.5 and max(delays) <= min(base * 1.5, 30.0)
        assert max(delays) - min(delays) > base * 0.4  # actually spread


def test_unreachable_subclasses_and_all():
    from k8sgw.kubeapi import watch
    from k8sgw.kubeapi.watch import WatchClosedEarlyError, WatchStalledError

    assert public_callables(watch) == set(watch.__all__)
    assert issubclass(WatchStalledError, ApiUnreachableError)
    assert issubclass(WatchClosedEarlyError, ApiUnreachableError)
    assert not issubclass(GoneError, ApiUnreachableError)
