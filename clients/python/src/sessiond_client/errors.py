"""Exceptions: one class per documented `error` code of sessiond, under `SessiondError`.

Messages hold sessiond's own `message` (which never contains a token or an API key) or a text
written here; neither ever includes a token, a handle's secret or a key.
"""

from __future__ import annotations

from typing import ClassVar


class SessiondError(Exception):
    """Base of every error about talking to sessiond: an error answer, or no answer at all."""

    code: ClassVar[str] = "unexpected_response"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class InvalidRequest(SessiondError):
    code = "invalid_request"


class InvalidAPIKey(SessiondError):
    code = "invalid_api_key"


class Forbidden(SessiondError):
    code = "forbidden"


class InvalidSession(SessiondError):
    """The token is missing, malformed, unknown, expired or revoked: the user is logged out."""

    code = "invalid_session"


class NotFound(SessiondError):
    code = "not_found"


class MethodNotAllowed(SessiondError):
    code = "method_not_allowed"


class PreconditionFailed(SessiondError):
    """`If-Match` named another version; `current_version` is the session's version now."""

    code = "precondition_failed"

    def __init__(
        self,
        message: str,
        *,
        current_version: int | None = None,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, request_id=request_id, retry_after=retry_after)
        self.current_version = current_version


class PayloadTooLarge(SessiondError):
    code = "payload_too_large"


class SessiondUnavailable(SessiondError):
    """sessiond or its Redis cannot answer now (503 after the retries, or no connection).

    Never a logout: the session may well be valid. Answer 503 and let the user retry.
    """

    code = "store_unavailable"


class StoreFull(SessiondError):
    """Redis is full and refused a write; nothing was written (`retry_after` is 5 s)."""

    code = "store_full"


class InternalError(SessiondError):
    code = "internal_error"


class UnexpectedResponse(SessiondError):
    """An answer that is not in sessiond's contract (e.g. from a proxy in between)."""


ERRORS_BY_CODE: dict[str, type[SessiondError]] = {
    cls.code: cls
    for cls in (
        InvalidRequest,
        InvalidAPIKey,
        Forbidden,
        InvalidSession,
        NotFound,
        MethodNotAllowed,
        PreconditionFailed,
        PayloadTooLarge,
        SessiondUnavailable,
        StoreFull,
        InternalError,
    )
}
