"""Domain errors. Each carries a stable machine-readable `reason` and optional `metadata`.

This module imports no gRPC: domain code raises these, and the one mapping table in
`sentinel.runtime.interceptors` turns them into gRPC statuses with `google.rpc.ErrorInfo`.
"""

from __future__ import annotations

from collections.abc import Mapping

ERROR_DOMAIN = "sentinel.dev"


class SentinelError(Exception):
    """Base of every error that a caller may see. `message` is safe to show to clients."""

    default_reason = "ERROR"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgumentError(SentinelError):
    """The request is malformed. `field` names the offending field path (e.g. `events[17].latency_ms`)."""

    default_reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        field: str,
        problem: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            f"{field}: {problem}" if field else problem,
            reason=reason,
            metadata={"field": field, **(metadata or {})},
        )
        self.field = field
        self.problem = problem


class NotFoundError(SentinelError):
    """The named resource does not exist (for this tenant)."""

    default_reason = "NOT_FOUND"


class AlreadyExistsError(SentinelError):
    """A resource with that identity already exists."""

    default_reason = "ALREADY_EXISTS"


class FailedPreconditionError(SentinelError):
    """The system is not in a state where the operation is allowed (e.g. an invalid transition)."""

    default_reason = "FAILED_PRECONDITION"


class ConflictError(SentinelError):
    """A concurrent change won (optimistic concurrency); re-read and retry."""

    default_reason = "VERSION_CONFLICT"


class ResourceExhaustedError(SentinelError):
    """Overload or quota: the caller should back off and retry."""

    default_reason = "RESOURCE_EXHAUSTED"


class UnavailableError(SentinelError):
    """A dependency is unreachable; the call is safe to retry."""

    default_reason = "UNAVAILABLE"


class UnauthenticatedError(SentinelError):
    """Missing or unknown credentials."""

    default_reason = "UNAUTHENTICATED"


class PermissionDeniedError(SentinelError):
    """Known caller, not allowed to do this."""

    default_reason = "PERMISSION_DENIED"


class NotImplementedYetError(SentinelError):
    """An RPC of the published contract whose behaviour has not been built yet."""

    default_reason = "NOT_IMPLEMENTED"


class DeadlineExceededError(SentinelError):
    """The work could not finish within the caller's deadline."""

    default_reason = "DEADLINE_EXCEEDED"
