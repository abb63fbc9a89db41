"""The HTTP client of the Kubernetes API: one httpx.AsyncClient, JSON GETs and raw line streams.

This is the only module that touches httpx. Every httpx exception is mapped to `kubeapi.errors`
here (`from exc`, like httpx's own `map_httpcore_exceptions`), and every non-2xx answer becomes
`status_error(...)` built from the metav1.Status body, so callers never see httpx types.

It must not log or raise secrets: request headers (Authorization) never appear in messages, URLs
in messages drop any userinfo, and bodies that are not a Status are capped.

Watch streams are split on b"\\n" only, never with `aiter_lines()`: httpx splits lines the way
`str.splitlines()` does (also on U+0085, U+2028, ...), which the API server leaves unescaped
inside JSON strings (JSON allows them raw; encoding/json does not escape them).
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, Self

import httpx
import pydantic
import trio

# pydantic's Rust JSON parser: two thirds of the time of json.loads on large list pages.
from pydantic_core import from_json

from k8sgw.kubeapi.connection import Connection
from k8sgw.kubeapi.errors import (
    ApiProtocolError,
    ApiStatusError,
    ApiUnreachableError,
    KubeError,
    status_error,
)
from k8sgw.kubeapi.models import Status

__all__ = ["LineStream", "KubeClient", "error_from_status", "parse_status"]

logger = logging.getLogger(__name__)

# Connect, write and pool waits: an API server that does not accept a request within 10 s is
# unreachable for our purposes. Reads of a plain GET get longer: a large LIST can take the
# apiserver many seconds before the first byte. Watch streams pass their own timeout (read=None):
# their stall detector is the trio inactivity deadline in watch.py, which also covers the headers.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, read=60.0)
STREAM_TIMEOUT = httpx.Timeout(10.0, read=None)

# How much of a body that is not a metav1.Status goes into an error message.
BODY_CAP = 200

Params = Mapping[str, str | int | bool | None]


def _cap(text: str, limit: int = BODY_CAP) -> str:
    text = text.strip()
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"


def parse_status(data: Any) -> Status | None:
    """A metav1.Status from a decoded JSON body, or None when the body is not one."""
    if not isinstance(data, dict) or data.get("kind", "Status") != "Status":
        return None
    if "code" not in data and "reason" not in data and "message" not in data:
        return None
    try:
        return Status.model_validate(data)
    except pydantic.ValidationError:
        return None


def error_from_status(
    status: Status, *, code: int | None = None, retry_after: float | None = None
) -> ApiStatusError:
    """The ApiStatusError for a Status (a failure body, or the object of a watch ERROR event).

    Args:
        status: the parsed Status.
        code: the HTTP status code, when there is one; else the Status's own code (500 if unset).
        retry_after: seconds from a Retry-After header; else details.retryAfterSeconds.
    """
    if retry_after is None and status.details.retry_after_seconds is not None:
        retry_after = float(status.details.retry_after_seconds)
    return status_error(code or status.code or 500, status.reason, status.message, retry_after=retry_after)


def _retry_after_header(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), None if unusable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())
    except (TypeError, ValueError):  # unparseable, or a date without a zone
        return None


def _error_from_response(response: httpx.Response) -> ApiStatusError:
    """status_error(...) for a non-2xx response whose body has been read."""
    retry_after = _retry_after_header(response.headers.get("Retry-After"))
    try:
        status = parse_status(from_json(response.content))
    except ValueError:
        status = None
    if status is not None:
        if not status.reason:
            status = status.model_copy(update={"reason": response.reason_phrase})
        return error_from_status(status, code=response.status_code, retry_after=retry_after)
    return status_error(
        response.status_code, response.reason_phrase, _cap(response.text), retry_after=retry_after
    )


class LineStream:
    """Async iterator of the raw lines (bytes, without b"\\n") of a streamed response body.

    Splits on b"\\n" only, with no size cap; lines that are empty or only whitespace are skipped;
    a last line without a newline is still delivered. Transport errors while reading raise
    ApiUnreachableError; a body that cannot be decoded (bad gzip) raises ApiProtocolError.
    A class rather than an async generator, so that leaving it early needs no finalizer.
    """

    def __init__(self, response: httpx.Response, where: str) -> None:
        self._chunks = response.aiter_bytes()
        self._where = where
        self._ready: deque[bytes] = deque()
        self._partial: list[bytes] = []
        self._eof = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        while not self._ready:
            if self._eof:
                raise StopAsyncIteration
            try:
                chunk = await anext(self._chunks, None)
            except httpx.HTTPError as exc:
                self._eof = True  # the generators have unwound
                raise _map_httpx_error(exc, self._where) from exc
            if chunk is None:
                self._eof = True
                self._push(b"".join(self._partial))
                self._partial.clear()
            else:
                self._feed(chunk)
        return self._ready.popleft()

    def _feed(self, chunk: bytes) -> None:
        parts = chunk.split(b"\n")
        if len(parts) == 1:
            self._partial.append(chunk)
            return
        self._partial.append(parts[0])
        self._push(b"".join(self._partial))
        for line in parts[1:-1]:
            self._push(line)
        self._partial = [parts[-1]] if parts[-1] else []

    def _push(self, line: bytes) -> None:
        if line.strip():
            self._ready.append(line)

    async def aclose(self) -> None:
        """Finish the byte iterator; the response itself is closed by stream_lines afterwards.

        httpx's byte iterators are async generators nested four deep (httpx #3686): `aclose()` on
        the outer one leaves the inner ones suspended, and trio warns when the garbage collector
        finds them. Pulling once more under an already-cancelled scope raises Cancelled at the
        innermost checkpoint, which unwinds and finishes every layer; data already buffered is
        discarded (bounded: anything more would need a checkpoint).
        """
        if self._eof:
            return
        self._eof = True
        self._ready.clear()
        with trio.CancelScope() as scope:
            scope.cancel()
            try:
                while True:
                    await anext(self._chunks)
            except (StopAsyncIteration, httpx.HTTPError):
                pass


def _root_cause(exc: BaseException) -> BaseException | None:
    """The OSError (ssl.SSLError included) an httpx error was raised from, if any.

    httpx over trio raises e.g. `ConnectError` with an empty message for a certificate that does
    not verify; the reason ("[SSL: CERTIFICATE_VERIFY_FAILED] ...", "Connection refused") is only
    on the chained exception. These texts come from the socket and TLS layers and carry no
    credentials (the request and its headers are never part of them).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    found = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and str(current):
            found = current
        current = current.__cause__ or current.__context__
    return found


def _map_httpx_error(exc: httpx.HTTPError, where: str) -> KubeError:
    detail = str(exc) or type(exc).__name__
    cause = _root_cause(exc)
    if cause is not None and str(cause) not in detail:
        detail = _cap(f"{detail}: {type(cause).__name__}: {cause}")
    if isinstance(exc, httpx.DecodingError):
        return ApiProtocolError(f"{where}: undecodable body: {detail}")
    return ApiUnreachableError(f"{where}: {type(exc).__name__}: {detail}")


class KubeClient:
    """An async client of one Kubernetes API server.

    Use as `async with KubeClient(conn) as client:`; the underlying connection pool is closed on
    exit. `transport` replaces the network (tests pass an httpx.MockTransport).
    """

    def __init__(self, conn: Connection, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._conn = conn
        base = httpx.URL(conn.base_url)
        # For messages only: the base URL without any user:password.
        self._safe_base = str(base.copy_with(userinfo=b"")).rstrip("/")
        self._extensions = {"sni_hostname": conn.tls_server_name} if conn.tls_server_name else {}
        self._http = httpx.AsyncClient(
            base_url=base,
            verify=conn.verify,
            auth=conn.auth,
            timeout=DEFAULT_TIMEOUT,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "k8sgw"},
            follow_redirects=False,
        )

    @property
    def connection(self) -> Connection:
        return self._conn

    async def __aenter__(self) -> Self:
        await self._http.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        await self._http.aclose()

    def _where(self, path: str) -> str:
        return f"GET {self._safe_base}{path}"

    async def get_json(self, path: str, params: Params | None = None) -> dict[str, Any]:
        """GET `path` and return the decoded JSON object.

        Raises:
            ApiStatusError (a subclass by code) for a non-2xx answer; ApiUnreachableError when the
            API cannot be reached or the body is cut; ApiProtocolError for a body that is not a
            JSON object.
        """
        where = self._where(path)
        logger.debug("%s %s", where, params or "")
        try:
            response = await self._http.get(path, params=_clean(params), extensions=self._extensions)
        except httpx.HTTPError as exc:
            raise _map_httpx_error(exc, where) from exc
        if not response.is_success:
            raise _error_from_response(response)
        try:
            data = from_json(response.content)
        except ValueError as exc:
            raise ApiProtocolError(f"{where}: not JSON: {_cap(response.text)!r}") from exc
        if not isinstance(data, dict):
            raise ApiProtocolError(f"{where}: not a JSON object: {_cap(response.text)!r}")
        # The response and its stream refer to each other: only the collector would free the body
        # (a list page's 200 KB), and one frozen by memory.after_list (gc.freeze) never is. The
        # body is read and closed, so its stream can go: the response then dies with this frame.
        response.stream = httpx.ByteStream(b"")
        return data

    @contextlib.asynccontextmanager
    async def stream_lines(
        self, path: str, params: Params | None = None, *, http_timeout: httpx.Timeout = STREAM_TIMEOUT
    ) -> AsyncIterator[LineStream]:
        """GET `path` as a stream; yields an async iterator of its raw lines (see LineStream).

        Use as `async with client.stream_lines(path, params) as lines: async for line in lines:`.
        The error statuses of the response raise on entry, like get_json; errors while reading
        raise from the iteration. The default timeout has no read limit: callers bound silence
        themselves (watch.py's inactivity deadline).
        """
        where = self._where(path)
        logger.debug("%s %s (stream)", where, params or "")
        try:
            async with self._http.stream(
                "GET", path, params=_clean(params), extensions=self._extensions, timeout=http_timeout
            ) as response:
                if not response.is_success:
                    await response.aread()
                    raise _error_from_response(response)
                lines = LineStream(response, where)
                try:
                    yield lines
                finally:
                    await lines.aclose()
        except httpx.HTTPError as exc:
            # Opening the stream (connect, TLS, headers), reading an error body, or closing.
            raise _map_httpx_error(exc, where) from exc


def _clean(params: Params | None) -> dict[str, str | int] | None:
    """Query parameters without the None values; booleans as Kubernetes spells them."""
    if not params:
        return None
    out: dict[str, str | int] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out
