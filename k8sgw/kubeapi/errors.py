"""Errors of the Kubernetes client. Callers never see httpx types: client.py maps them here.

    KubeError (k8sgw.errors.K8sgwError)
    ├── KubeconfigError (also k8sgw.errors.ConfigError)   no usable credentials / bad kubeconfig
    ├── ApiUnreachableError      connect refused, TLS failure, timeout, stream cut mid-body
    ├── ApiProtocolError         a body that is not the JSON the API promises
    └── ApiStatusError           the API answered with a metav1.Status failure (code, reason, message)
        ├── UnauthorizedError    401
        ├── ForbiddenError       403
        ├── NotFoundError        404 (a kind whose API group/version is not served)
        ├── GoneError            410 Expired/Gone: the resourceVersion is too old, relist
        ├── TooManyRequestsError 429 (retry_after from Retry-After or details.retryAfterSeconds)
        └── ServerError          5xx
"""

from __future__ import annotations

from k8sgw.errors import ConfigError, K8sgwError

__all__ = [
    "ApiProtocolError",
    "ApiStatusError",
    "ApiUnreachableError",
    "ForbiddenError",
    "GoneError",
    "KubeError",
    "KubeconfigError",
    "NotFoundError",
    "ServerError",
    "TooManyRequestsError",
    "UnauthorizedError",
    "status_error",
]


class KubeError(K8sgwError):
    """Base of every Kubernetes client error."""


class KubeconfigError(ConfigError, KubeError):
    """No usable credentials: a kubeconfig that cannot be read or resolved, or no configuration at all."""


class ApiUnreachableError(KubeError):
    """The API could not be reached or the connection broke (connect, TLS, timeout, cut stream)."""


class ApiProtocolError(KubeError):
    """The API sent something that is not the JSON it promises (the body is capped in the message)."""


class ApiStatusError(KubeError):
    """The API answered with a failure Status."""

    def __init__(
        self, code: int, reason: str = "", message: str = "", *, retry_after: float | None = None
    ) -> None:
        self.code = code
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        super().__init__(f"{code} {reason or 'error'}: {message}".rstrip(": "))


class UnauthorizedError(ApiStatusError):
    """401: the credentials were refused (wrong or expired token)."""


class ForbiddenError(ApiStatusError):
    """403: authenticated, but RBAC does not allow this verb on this resource."""


class NotFoundError(ApiStatusError):
    """404: no such resource (for a collection: the group/version is not served)."""


class GoneError(ApiStatusError):
    """410 Expired/Gone: the resourceVersion asked for is no longer in the API's history."""


class TooManyRequestsError(ApiStatusError):
    """429: the API asks us to slow down; retry_after says for how long, when it says."""


class ServerError(ApiStatusError):
    """5xx from the API."""


_BY_CODE: dict[int, type[ApiStatusError]] = {
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    410: GoneError,
    429: TooManyRequestsError,
}


def status_error(
    code: int, reason: str = "", message: str = "", *, retry_after: float | None = None
) -> ApiStatusError:
    """The ApiStatusError subclass for an HTTP/Status code."""
    cls = _BY_CODE.get(code) or (ServerError if code >= 500 else ApiStatusError)
    return cls(code, reason, message, retry_after=retry_after)
