"""Errors of the dev API server, shaped as Kubernetes ``metav1.Status`` failures.

ApiError (code, reason, message) is raised by the store and the HTTP layer alike; the HTTP layer turns it
into a Status body, the Python API lets it propagate.

    K8sgwError
    └── ApiError            any Status failure: 400 BadRequest, 404 NotFound, 409 AlreadyExists/Conflict,
                            410 Expired, 415 UnsupportedMediaType, 422 Invalid, ...
"""

from __future__ import annotations

from typing import Any

from k8sgw.errors import K8sgwError

__all__ = ["ApiError", "status_body"]


class ApiError(K8sgwError):
    """A Kubernetes API failure with an HTTP code and a ``metav1.Status`` reason."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        return status_body(self.code, self.reason, self.message, details=self.details)


def status_body(
    code: int, reason: str, message: str, *, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    # Go's StatusDetails fields are all `omitempty`: a core-group error has no "group" at all.
    details = {k: v for k, v in (details or {}).items() if v not in ("", None, [], 0)}
    if details:
        body["details"] = details
    return body
