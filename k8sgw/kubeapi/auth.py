"""httpx.Auth implementations for the credentials a kubeconfig or service account gives us.

    TokenAuth   static bearer token, or a token file re-read every 60 s and right after a 401
    BasicAuth   username/password (httpx.BasicAuth with a repr that hides the password)
    ExecAuth    client.authentication.k8s.io exec plugins (token credentials), run under trio

What this module must not do: put a token, password or plugin output into an exception message,
a log line or a repr. Errors that mean "no usable credentials" are KubeconfigError; they pass
through httpx unchanged (httpx only wraps its own transport errors).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import trio

from k8sgw.kubeapi.errors import KubeconfigError

__all__ = ["EXEC_API_VERSIONS", "BasicAuth", "ExecAuth", "TokenAuth"]

logger = logging.getLogger(__name__)

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")


class TokenAuth(httpx.Auth):
    """Bearer token auth; with `token_file`, the file is the source of truth and is re-read.

    The file is re-read at most every `reload_interval` seconds (client-go's 1 min: half of the
    time between the kubelet rotating a bound token and the old one expiring) and right after a
    401. If the re-read token differs from the one refused, the request is retried once with it;
    a static token is never retried (the same token would be refused again).

    If a re-read fails but a token was read before, the old token is kept and a warning logged
    (the kubelet swaps the file atomically, so this is a transient state); with no token at all
    the request fails with KubeconfigError.

    Works with both httpx.Client and httpx.AsyncClient: reading a few hundred bytes from a
    local (tmpfs) file does not need a thread.

    Args:
        token: a static token; with `token_file` it is ignored (the file wins, as in kubectl).
        token_file: path of a file holding the token (surrounding whitespace is stripped).
        reload_interval: seconds between re-reads of `token_file`.
        clock: monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        token_file: str | os.PathLike[str] | None = None,
        reload_interval: float = 60.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if token is None and token_file is None:
            raise ValueError("TokenAuth needs a token or a token_file")
        self._token_file = os.fspath(token_file) if token_file is not None else None
        self._token: str | None = None if self._token_file is not None else token
        self._reload_interval = reload_interval
        self._clock = clock if clock is not None else time.monotonic
        self._next_read = -math.inf

    def __repr__(self) -> str:
        if self._token_file is not None:
            return f"TokenAuth(token_file={self._token_file!r})"
        return "TokenAuth(token=<hidden>)"

    def _read(self, *, force: bool) -> str:
        if self._token_file is None:
            assert self._token is not None
            return self._token
        now = self._clock()
        if force or self._token is None or now >= self._next_read:
            try:
                with open(self._token_file, encoding="utf-8") as f:
                    token = f.read().strip()
                if not token:
                    raise ValueError("the file is empty")
            except (OSError, ValueError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                if self._token is None:
                    raise KubeconfigError(
                        f"cannot read bearer token file: {reason}", filename=self._token_file
                    ) from exc
                logger.warning(
                    "cannot re-read token file %s: %s; keeping the old token", self._token_file, reason
                )
            else:
                self._token = token
            self._next_read = now + self._reload_interval
        assert self._token is not None
        return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._read(force=False)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and self._token_file is not None:
            fresh = self._read(force=True)
            if fresh != token:
                logger.info("401 from the API; retrying with the rotated token from %s", self._token_file)
                request.headers["Authorization"] = f"Bearer {fresh}"
                yield request


class BasicAuth(httpx.BasicAuth):
    """httpx.BasicAuth whose repr names the user and hides the password."""

    def __init__(self, username: str, password: str) -> None:
        super().__init__(username, password)
        self._username = username

    def __repr__(self) -> str:
        return f"BasicAuth(username={self._username!r}, password=<hidden>)"


class ExecAuth(httpx.Auth):
    """Bearer tokens from a client.authentication.k8s.io exec credential plugin (async only).

    The plugin runs with `trio.run_process` under `trio.fail_after(exec_timeout)`, non-interactively
    (stdin is empty, `spec.interactive` is false), with the environment `base_env` + `env` +
    KUBERNETES_EXEC_INFO. Its stderr goes to ours, as with kubectl; its stdout (the credential)
    is never logged. The token is cached until `status.expirationTimestamp` (forever if absent);
    after a 401 the plugin is run again, once per refused token even with many requests in
    flight, and the request is retried once if the new token differs.

    Only token credentials are supported: a plugin returning clientCertificateData fails with a
    KubeconfigError saying so.

    Args:
        command: the executable (PATH lookup if it has no slash).
        args: its arguments (not shown in errors or repr: they may hold secrets).
        api_version: client.authentication.k8s.io/v1 or v1beta1.
        env: extra variables from the kubeconfig `exec.env` list.
        base_env: the environment to start from; None means os.environ.
        cluster: `spec.cluster` for KUBERNETES_EXEC_INFO (provideClusterInfo), or None.
        install_hint: shown when the command cannot be started.
        exec_timeout: seconds the plugin may run.
        filename: the kubeconfig that configured the plugin, for error messages.
    """

    requires_response_body = False

    def __init__(
        self,
        command: str,
        args: Sequence[str] = (),
        *,
        api_version: str = "client.authentication.k8s.io/v1",
        env: Mapping[str, str] | None = None,
        base_env: Mapping[str, str] | None = None,
        cluster: Mapping[str, Any] | None = None,
        install_hint: str | None = None,
        exec_timeout: float = 30.0,
        filename: str | None = None,
    ) -> None:
        if api_version not in EXEC_API_VERSIONS:
            raise ValueError(f"unsupported exec apiVersion {api_version!r}")
        self._command = command
        self._args = list(args)
        self._api_version = api_version
        self._env = dict(env or {})
        self._base_env = base_env
        self._cluster = dict(cluster) if cluster is not None else None
        self._install_hint = install_hint
        self._exec_timeout = exec_timeout
        self._filename = filename
        self._token: str | None = None
        self._expiry: datetime | None = None
        self._lock = trio.Lock()

    def __repr__(self) -> str:
        return f"ExecAuth(command={self._command!r}, api_version={self._api_version!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("ExecAuth runs its plugin under trio: use httpx.AsyncClient")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._get_token(refused=None)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            fresh = await self._get_token(refused=token)
            if fresh != token:
                request.headers["Authorization"] = f"Bearer {fresh}"
                yield request

    async def _get_token(self, *, refused: str | None) -> str:
        async with self._lock:
            # Another request may have refreshed while we waited for the lock.
            if self._token is not None and self._token != refused:
                if self._expiry is None or datetime.now(UTC) < self._expiry:
                    return self._token
            self._token, self._expiry = await self._run()
            return self._token

    def _error(self, message: str) -> KubeconfigError:
        return KubeconfigError(f"exec plugin {self._command!r}: {message}", filename=self._filename)

    async def _run(self) -> tuple[str, datetime | None]:
        exec_info: dict[str, Any] = {
            "kind": "ExecCredential",
            "apiVersion": self._api_version,
            "spec": {"interactive": False},
        }
        if self._cluster is not None:
            exec_info["spec"]["cluster"] = self._cluster
        env = dict(os.environ if self._base_env is None else self._base_env)
        env.update(self._env)
        env["KUBERNETES_EXEC_INFO"] = json.dumps(exec_info)
        logger.debug("running exec credential plugin %s", self._command)
        try:
            with trio.fail_after(self._exec_timeout):
                proc = await trio.run_process(
                    [self._command, *self._args],
                    stdin=b"",
                    capture_stdout=True,
                    check=False,
                    env=env,
                    deliver_cancel=_kill,
                )
        except trio.TooSlowError as exc:
            raise self._error(f"did not finish within {self._exec_timeout:g} s") from exc
        except OSError as exc:
            hint = f"; {self._install_hint}" if self._install_hint else ""
            raise self._error(f"cannot be started: {exc.strerror or exc}{hint}") from exc
        if proc.returncode != 0:
            raise self._error(f"exited with status {proc.returncode} (its stderr went to k8sgw's stderr)")
        return self._parse(proc.stdout)

    def _parse(self, stdout: bytes) -> tuple[str, datetime | None]:
        # Messages below describe the shape of the output, never its content.
        try:
            cred = json.loads(stdout)
        except ValueError:
            raise self._error("printed something that is not JSON") from None
        if not isinstance(cred, dict) or cred.get("kind") != "ExecCredential":
            raise self._error("did not print an ExecCredential")
        if cred.get("apiVersion") != self._api_version:
            raise self._error(f"printed an ExecCredential whose apiVersion is not {self._api_version}")
        status = cred.get("status")
        if not isinstance(status, dict):
            raise self._error("printed an ExecCredential without status")
        if status.get("clientCertificateData") or status.get("clientKeyData"):
            raise self._error(
                "returned a client certificate; k8sgw supports only token credentials from exec plugins"
            )
        token = status.get("token")
        if not isinstance(token, str) or not token:
            raise self._error("printed an ExecCredential without status.token")
        expiry: datetime | None = None
        stamp = status.get("expirationTimestamp")
        if stamp is not None:
            try:
                expiry = datetime.fromisoformat(str(stamp))
            except ValueError:
                raise self._error("printed an expirationTimestamp that is not RFC 3339") from None
            if expiry.tzinfo is None:
                raise self._error("printed an expirationTimestamp without a time zone")
        return token, expiry


async def _kill(process: trio.Process) -> None:
    # A plugin that overran its timeout is stuck; trio's default (SIGTERM, wait 5 s, SIGKILL)
    # would only delay the error.
    process.kill()
