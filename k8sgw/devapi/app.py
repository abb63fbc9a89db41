"""The ASGI application of the dev API server: routing, CRUD handlers, list paging and watch streams.

It holds no state of its own; everything lives in the DevCluster. Every response carries
`Cache-Control: no-cache, private` (kubectl's HTTP cache otherwise serves a stale /version). GET of
an object or a list answers a Table when asked (`kubectl get`, see tables.py); watches always stream
objects, which kubectl prints itself.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import trio
import yaml

from . import discovery, tables
from .errors import ApiError, status_body
from .kinds import Kind
from .selectors import parse_field_selector, parse_label_selector
from .store import Change, DevCluster, dumps

__all__ = ["DevApiApp"]

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_BODY = 3 * 1024 * 1024  # the real apiserver's request size limit is 3 MiB
_HEALTH = ("/healthz", "/readyz", "/livez")
_NOT_FOUND = ApiError(404, "NotFound", "the server could not find the requested resource")


def _headers(content_type: str = "application/json", extra: list[tuple[bytes, bytes]] | None = None) -> list:
    return [
        (b"content-type", content_type.encode()),
        (b"cache-control", b"no-cache, private"),
        *(extra or []),
    ]


async def _respond(
    send: Send,
    code: int,
    body: Any,
    *,
    extra: list[tuple[bytes, bytes]] | None = None,
    content_type: str | None = None,
) -> None:
    data = body if isinstance(body, bytes) else dumps(body)
    ctype = content_type or ("text/plain; charset=utf-8" if isinstance(body, bytes) else "application/json")
    await send({"type": "http.response.start", "status": code, "headers": _headers(ctype, extra)})
    await send({"type": "http.response.body", "body": data})


async def _respond_error(send: Send, exc: ApiError) -> None:
    details = dict(exc.details or {})
    extra = []
    if exc.retry_after is not None:
        details["retryAfterSeconds"] = exc.retry_after
        extra.append((b"retry-after", str(exc.retry_after).encode()))
    await _respond(
        send, exc.code, status_body(exc.code, exc.reason, exc.message, details=details), extra=extra
    )


def _flag(value: str | None) -> bool:
    return value in ("true", "1", "True")


def _int_param(params: dict[str, str], name: str) -> int | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, "BadRequest", f"invalid value for {name}: {value!r}") from None


def _resource_version(value: str, current: int) -> int | None:
    """None for ""/"0"; otherwise the RV as int (400 if not a number)."""
    if value in ("", "0"):
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, "BadRequest", f'invalid resource version "{value}"') from None


def _invalid_list_options(message: str) -> ApiError:
    return ApiError(
        422,
        "Invalid",
        f'ListOptions.meta.k8s.io "" is invalid: {message}',
        details={"group": "meta.k8s.io", "kind": "ListOptions"},
    )


def _encode_continue(rv: int, key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(dumps({"rv": rv, "start": list(key)})).decode()


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error):
        raise ApiError(400, "BadRequest", "continue key is not valid: illegal base64 data") from None


class DevApiApp:
    """ASGI 3 application over a DevCluster."""

    def __init__(self, cluster: DevCluster) -> None:
        self.cluster = cluster

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        try:
            await self._handle(scope, receive, send)
        except ApiError as exc:
            await _respond_error(send, exc)
        except Exception as exc:
            logger.exception("dev API: %s %s failed", scope["method"], scope["path"])
            await _respond_error(send, ApiError(500, "InternalError", f"Internal error occurred: {exc!r}"))

    # ---- routing -----------------------------------------------------------------------------------
    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        cluster, faults = self.cluster, self.cluster.faults
        path = scope["path"].rstrip("/") or "/"
        method = scope["method"]
        params = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if faults.is_unavailable:
            raise ApiError(503, "ServiceUnavailable", "the server is currently unable to handle the request")
        if path in _HEALTH or path.startswith(tuple(p + "/" for p in _HEALTH)):
            await _respond(send, 200, b"ok")
            return
        faults.requests += 1
        if faults.requests_stalled:  # accepted and read, never answered (not even headers)
            await faults.wait_requests_resumed()
        if cluster.token is not None and headers.get("authorization") != f"Bearer {cluster.token}":
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if failure := faults.take_failure():
            raise ApiError(failure.code, failure.reason, failure.message, retry_after=failure.retry_after)

        parts = path.strip("/").split("/")
        if method == "GET":
            doc = self._static(path, parts, scope)
            if doc is not None:
                await _respond(send, 200, doc)
                return
        if parts[0] == "api" and len(parts) >= 3 and parts[1] == "v1":
            group, version, rest = "", "v1", parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _NOT_FOUND
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise _NOT_FOUND
        kind = cluster.kind_for(group, version, rest[0])
        if kind is None or (namespace is not None and not kind.namespaced):
            raise _NOT_FOUND
        if kind.resource in faults.forbidden:
            verb = "watch" if _flag(params.get("watch")) else method.lower()
            raise ApiError(
                403,
                "Forbidden",
                f'{kind.resource} is forbidden: User "system:serviceaccount:dev:k8sgw" cannot {verb} '
                f'resource "{kind.plural}" in API group "{kind.group}" at the cluster scope',
            )
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and (sub != "status" or not kind.has_status):
            raise _NOT_FOUND
        if name is not None and kind.namespaced and namespace is None:
            raise _NOT_FOUND
        request = _Request(kind, version, namespace, name, sub, params, headers, receive)
        handler = {
            (False, "GET"): self._get_collection,
            (False, "POST"): self._create,
            (False, "DELETE"): self._delete_collection,
            (True, "GET"): self._get,
            (True, "PUT"): self._put,
            (True, "PATCH"): self._patch,
            (True, "DELETE"): self._delete,
        }.get((name is not None, method))
        if handler is None or (sub is not None and method == "DELETE"):
            raise ApiError(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            )
        await handler(request, send)

    def _static(self, path: str, parts: list[str], scope: Scope) -> Any:
        cluster = self.cluster
        if path == "/version":
            return discovery.VERSION
        if path == "/api":
            host, port = scope.get("server") or ("127.0.0.1", 0)
            return discovery.api_versions(f"{host}:{port}")
        if path == "/apis":
            return discovery.group_list(cluster)
        if path == "/api/v1":
            return discovery.api_resource_list(cluster, "", "v1")
        if parts[0] == "apis" and len(parts) == 2:
            group = next((g for g in discovery.group_list(cluster)["groups"] if g["name"] == parts[1]), None)
            if group is None:
                raise _NOT_FOUND
            return {"kind": "APIGroup", "apiVersion": "v1", **group}
        if parts[0] == "apis" and len(parts) == 3:
            return discovery.api_resource_list(cluster, parts[1], parts[2]) or _raise(_NOT_FOUND)
        if path == "/openapi/v3":
            return discovery.openapi_root(cluster)
        if path.startswith("/openapi/v3/"):
            gv = parts[2:]
            if gv[:1] == ["api"] and len(gv) == 2:
                doc = discovery.openapi_gv(cluster, "", gv[1])
            elif gv[:1] == ["apis"] and len(gv) == 3:
                doc = discovery.openapi_gv(cluster, gv[1], gv[2])
            else:
                doc = None
            return doc or _raise(_NOT_FOUND)
        return None

    # ---- reads -------------------------------------------------------------------------------------
    def _out(self, req: _Request, obj: dict[str, Any], *, item: bool = False) -> dict[str, Any]:
        """The object as served at the requested version; list items of built-ins lack kind/apiVersion."""
        if item and req.kind.builtin:
            return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
        gv = req.kind.group_version(req.version)
        return obj if obj.get("apiVersion") == gv else {**obj, "apiVersion": gv}

    def _matcher(self, req: _Request) -> Callable[[dict[str, Any]], bool]:
        label = parse_label_selector(req.params.get("labelSelector"))
        field = parse_field_selector(req.params.get("fieldSelector"))
        namespace = req.namespace

        def match(obj: dict[str, Any]) -> bool:
            if namespace is not None and obj["metadata"].get("namespace") != namespace:
                return False
            return (label is None or label(obj)) and (field is None or field(obj))

        return match

    async def _get(self, req: _Request, send: Send) -> None:
        obj = self.cluster.get_object(req.kind, req.namespace, req.name or "")
        if version := tables.table_version(req.headers.get("accept", "")):
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            await _respond(send, 200, self._table(req, [obj], meta, version))
            return
        await _respond(send, 200, self._out(req, obj))

    def _table(
        self, req: _Request, objects: list[dict[str, Any]], meta: dict[str, Any], version: str
    ) -> dict:
        include = req.params.get("includeObject") or "Metadata"
        if include not in ("None", "Metadata", "Object"):
            raise ApiError(400, "BadRequest", f'includeObject: Unsupported value: "{include}"')
        return tables.table(
            req.kind, [self._out(req, o) for o in objects], meta, version=version, include_object=include
        )

    async def _get_collection(self, req: _Request, send: Send) -> None:
        if _flag(req.params.get("watch")):
            await self._watch(req, send)
        elif self.cluster.faults.take_list_fault():
            body = self._list_json(req)
            await _respond(send, 200, body[: len(body) // 2], content_type="application/json")
        elif version := tables.table_version(req.headers.get("accept", "")):
            meta, items = self._list(req)
            await _respond(send, 200, self._table(req, items, meta, version))
        else:
            await _respond(send, 200, self._list_json(req), content_type="application/json")

    def _list_json(self, req: _Request) -> bytes:
        """The list body, encoded: the items' JSON as the cluster keeps it, joined (the same bytes
        as encoding the whole list)."""
        meta, items = self._list(req)
        kind, gv = req.kind, req.kind.group_version(req.version)
        cluster = self.cluster
        if kind.builtin:
            encoded = [cluster.item_json(kind, o) for o in items]
        else:  # a custom resource's items carry their apiVersion: as requested
            encoded = [cluster.item_json(kind, o) if o.get("apiVersion") == gv else dumps(self._out(req, o, item=True)) for o in items]
        head = dumps({"kind": f"{kind.kind}List", "apiVersion": gv, "metadata": meta})
        return b"".join((head[:-1], b',"items":[', b",".join(encoded), b"]}"))

    def _list(self, req: _Request) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The list's metadata and its objects, whole as stored."""
        cluster, params = self.cluster, req.params
        rv_param = params.get("resourceVersion", "")
        rvm = params.get("resourceVersionMatch", "")
        token = params.get("continue", "")
        if "sendInitialEvents" in params:
            raise _invalid_list_options(
                "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list"
            )
        if rvm not in ("", "Exact", "NotOlderThan"):
            raise _invalid_list_options(f'resourceVersionMatch: Unsupported value: "{rvm}"')
        if rvm and not rv_param:
            raise _invalid_list_options(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
            )
        if rvm and token:
            raise _invalid_list_options(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided"
            )
        if rvm == "Exact" and rv_param == "0":
            raise _invalid_list_options(
                'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"'
            )
        rv = _resource_version(rv_param, cluster.resource_version)
        if rv is not None and rv > cluster.resource_version:
            raise ApiError(
                504,
                "Timeout",
                f"Too large resource version: {rv}, current: {cluster.resource_version}",
                details={
                    "causes": [
                        {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                    ],
                    "retryAfterSeconds": 1,
                },
            )
        if rvm == "Exact" and rv is not None and rv != cluster.resource_version:
            raise ApiError(410, "Expired", f"too old resource version: {rv} ({cluster.resource_version})")
        match = self._matcher(req)
        snapshot = cluster.resource_version
        start = None
        if token:
            snapshot, start = _decode_continue(token)
            if snapshot < cluster.compacted_rv:
                raise ApiError(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent "
                    "list result. You can start a new list without the continue parameter.",
                )
        meta: dict[str, Any] = {"resourceVersion": str(snapshot)}
        limit = _int_param(params, "limit")
        page_limit = limit if limit is not None and limit > 0 else None
        items, remaining = cluster.list_page(req.kind, req.namespace, match, after=start, limit=page_limit)
        if remaining:
            last = items[-1]["metadata"]
            meta["continue"] = _encode_continue(snapshot, (last.get("namespace", ""), last["name"]))
            if not params.get("labelSelector") and not params.get("fieldSelector"):
                meta["remainingItemCount"] = remaining
        return meta, items

    # ---- watch -------------------------------------------------------------------------------------
    async def _watch(self, req: _Request, send: Send) -> None:
        cluster, params = self.cluster, req.params
        rv_param = params.get("resourceVersion", "")
        rvm = params.get("resourceVersionMatch", "")
        sie = params.get("sendInitialEvents")
        bookmarks = _flag(params.get("allowWatchBookmarks"))
        if sie is not None and _flag(sie) and rvm != "NotOlderThan":
            raise _invalid_list_options(
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
            )
        if rvm and sie is None:
            raise _invalid_list_options(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"
            )
        if rvm not in ("", "NotOlderThan"):
            raise _invalid_list_options(f'resourceVersionMatch: Unsupported value: "{rvm}"')
        rv = _resource_version(rv_param, cluster.resource_version)
        initial = _flag(sie) if sie is not None else rv is None
        timeout = _int_param(params, "timeoutSeconds")
        match = self._matcher(req)
        gv = req.kind.group_version(req.version)

        await send({"type": "http.response.start", "status": 200, "headers": _headers()})

        async def emit(event: dict[str, Any]) -> None:
            await send({"type": "http.response.body", "body": dumps(event) + b"\n", "more_body": True})

        try:
            if cluster.faults.take_watch_fault():
                raise ApiError(410, "Expired", f"too old resource version: {rv_param} (injected fault)")
            since = None if initial else (rv if rv is not None else cluster.resource_version)
            backlog, watch = cluster.open_watch(req.kind, req.namespace, since)
        except ApiError as exc:  # too old: 200 + one ERROR event, like the watch cache
            await emit({"type": "ERROR", "object": exc.status()})
            await send({"type": "http.response.body", "body": b""})
            return
        snapshot_rv = cluster.resource_version

        def bookmark(rv: int, initial_end: bool = False) -> dict[str, Any]:
            meta: dict[str, Any] = {"resourceVersion": str(rv)}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return {"type": "BOOKMARK", "object": {"kind": req.kind.kind, "apiVersion": gv, "metadata": meta}}

        async def emit_change(change: Change) -> None:
            translated = _translate(change, match)
            if translated is not None:
                await emit({"type": translated[0], "object": self._out(req, translated[1])})

        async def stall_point() -> None:
            if cluster.faults.watches_stalled:
                await cluster.faults.wait_watches_resumed()

        async def stream() -> None:
            deadline = trio.current_time() + timeout if timeout else math.inf
            interval = cluster.bookmark_interval if bookmarks else math.inf
            with trio.move_on_at(deadline):
                for change in backlog:
                    await stall_point()
                    await emit_change(change)
                if initial and sie is not None and bookmarks:
                    await stall_point()
                    await emit(bookmark(snapshot_rv, initial_end=True))
                while True:
                    with trio.move_on_after(interval) as idle:
                        change = await watch.recv.receive()
                    await stall_point()
                    if idle.cancelled_caught:
                        await emit(bookmark(cluster.resource_version))
                    else:
                        await emit_change(change)
            if cluster.faults.watches_stalled:  # a stalled stream ignores its timeout, like a dead peer
                await trio.sleep_forever()
            while True:  # flush what is queued, then a bookmark just before the timeout end
                try:
                    change = watch.recv.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                await emit_change(change)
            if bookmarks:
                await emit(bookmark(cluster.resource_version))

        outcome = "timeout"
        fault = cluster.faults.open_stream()
        try:
            async with trio.open_nursery() as nursery:

                async def run(fn: Callable[[], Awaitable[Any]], result: str) -> None:
                    nonlocal outcome
                    try:
                        await fn()
                    except trio.EndOfChannel:
                        result = "dropped"
                    if outcome == "timeout":
                        outcome = result
                    nursery.cancel_scope.cancel()

                nursery.start_soon(run, stream, "timeout")
                nursery.start_soon(run, _disconnected(req.receive), "disconnected")
                nursery.start_soon(run, watch.dropped.wait, "dropped")
                nursery.start_soon(run, fault.fired.wait, "fault")
        finally:
            cluster.close_watch(watch)
            cluster.faults.close_stream(fault)
        if outcome == "fault":  # faults.garble_watches / cut_watches: a bad line, then cut
            if fault.action == "garble":
                data = b"<html>502 Bad Gateway</html>\n"
            else:
                line = dumps(
                    {"type": "MODIFIED", "object": {"kind": req.kind.kind, "metadata": {"name": "x"}}}
                )
                data = line[: len(line) // 2]
            await send({"type": "http.response.body", "body": data, "more_body": True})
            return
        if outcome == "timeout":
            await send({"type": "http.response.body", "body": b""})
        # "dropped": return without the final chunk; hypercorn then closes the connection mid-body.

    # ---- writes ------------------------------------------------------------------------------------
    async def _create(self, req: _Request, send: Send) -> None:
        body = await req.json()
        namespace = req.namespace
        if req.kind.namespaced and namespace is None and isinstance(body, dict):
            namespace = (body.get("metadata") or {}).get("namespace") or "default"
        obj = self.cluster.create(req.kind, namespace, body, dry_run=req.dry_run())
        await _respond(send, 201, self._out(req, obj))

    async def _put(self, req: _Request, send: Send) -> None:
        body = await req.json()
        obj = self.cluster.update(
            req.kind, req.namespace, req.name or "", body, subresource=req.sub, dry_run=req.dry_run()
        )
        await _respond(send, 200, self._out(req, obj))

    async def _patch(self, req: _Request, send: Send) -> None:
        content_type = req.headers.get("content-type", "").split(";")[0].strip()
        if content_type == "application/apply-patch+yaml":
            raw = await req.body()
            try:
                body = yaml.safe_load(raw) if raw else None
            except yaml.YAMLError as exc:
                raise ApiError(400, "BadRequest", f"error decoding YAML: {exc}") from None
        else:
            body = await req.json()
        obj, created = self.cluster.patch(
            req.kind,
            req.namespace,
            req.name or "",
            content_type,
            body,
            subresource=req.sub,
            field_manager=req.params.get("fieldManager"),
            dry_run=req.dry_run(),
        )
        await _respond(send, 201 if created else 200, self._out(req, obj))

    async def _delete(self, req: _Request, send: Send) -> None:
        raw = await req.body()
        options = {}
        if raw.strip():
            options = await req.json()
        dry_run = req.dry_run() or options.get("dryRun") == ["All"]
        precondition = (options.get("preconditions") or {}).get("resourceVersion")
        obj = self.cluster.delete_object(
            req.kind, req.namespace, req.name or "", precondition_rv=precondition, dry_run=dry_run
        )
        await _respond(send, 200, self._out(req, obj))

    async def _delete_collection(self, req: _Request, send: Send) -> None:
        match = self._matcher(req)
        deleted = [
            self.cluster.delete_object(
                req.kind, o["metadata"].get("namespace"), o["metadata"]["name"], dry_run=req.dry_run()
            )
            for o in self.cluster.list_objects(req.kind, req.namespace, match)
        ]
        await _respond(
            send,
            200,
            {
                "kind": f"{req.kind.kind}List",
                "apiVersion": req.kind.group_version(req.version),
                "metadata": {"resourceVersion": str(self.cluster.resource_version)},
                "items": [self._out(req, o, item=True) for o in deleted],
            },
        )


class _Request:
    def __init__(
        self,
        kind: Kind,
        version: str,
        namespace: str | None,
        name: str | None,
        sub: str | None,
        params: dict[str, str],
        headers: dict[str, str],
        receive: Receive,
    ) -> None:
        self.kind, self.version, self.namespace, self.name, self.sub = kind, version, namespace, name, sub
        self.params, self.headers, self.receive = params, headers, receive
        self._body: bytes | None = None

    async def body(self) -> bytes:
        if self._body is None:
            chunks, size = [], 0
            while True:
                message = await self.receive()
                if message["type"] == "http.disconnect":
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > MAX_BODY:
                    raise ApiError(413, "RequestEntityTooLarge", "the request is too large")
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        raw = await self.body()
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ApiError(
                400, "BadRequest", f"the body of the request could not be decoded as JSON: {exc}"
            ) from None

    def dry_run(self) -> bool:
        value = self.params.get("dryRun")
        if value in (None, ""):
            return False
        if value != "All":
            raise ApiError(
                400, "BadRequest", f'dryRun: Unsupported value: "{value}": supported values: "All"'
            )
        return True


def _translate(change: Change, match: Callable[[dict[str, Any]], bool]) -> tuple[str, dict[str, Any]] | None:
    """A change as this watch sees it: objects entering/leaving its selection become ADDED/DELETED."""
    now = match(change.obj)
    if change.type != "MODIFIED" or change.old is None:
        return (change.type, change.obj) if now else None
    before = match(change.old)
    if before and now:
        return ("MODIFIED", change.obj)
    if now:
        return ("ADDED", change.obj)
    if before:
        return ("DELETED", change.obj)
    return None


def _disconnected(receive: Receive) -> Callable[[], Awaitable[None]]:
    async def wait() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    return wait


def _raise(exc: Exception) -> Any:
    raise exc
