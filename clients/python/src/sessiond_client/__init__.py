"""Typed client for sessiond, with Django, Flask, ASGI and WSGI session integrations."""

from ._operations import RetryPolicy
from .client import AsyncSessiondClient, SessiondClient
from .errors import (Forbidden, InternalError, InvalidAPIKey, InvalidRequest, InvalidSession, MethodNotAllowed,
                     NotFound, PayloadTooLarge, PreconditionFailed, SessiondError, SessiondUnavailable, StoreFull,
                     UnexpectedResponse)
from .models import CreatedSession, RevokeResult, Session, SessionList
from .web import AsyncRequestSession, ConfigurationError, NotLoggedIn, RequestSession

__all__ = [
    "AsyncRequestSession", "AsyncSessiondClient", "ConfigurationError", "CreatedSession", "Forbidden",
    "InternalError", "InvalidAPIKey", "InvalidRequest", "InvalidSession", "MethodNotAllowed", "NotFound",
    "NotLoggedIn", "PayloadTooLarge", "PreconditionFailed", "RequestSession", "RetryPolicy", "RevokeResult",
    "Session", "SessionList", "SessiondClient", "SessiondError", "SessiondUnavailable", "StoreFull",
    "UnexpectedResponse",
]
