"""Django session backend on sessiond. In settings.py:

    SESSION_ENGINE = "sessiond_client.django"
    SESSION_COOKIE_NAME = "__Host-session"      # sessiond's SESSIOND_COOKIE_NAME
    MIDDLEWARE: "sessiond_client.django.SessionMiddleware" in place of Django's SessionMiddleware
    SESSIOND = {"URL": "http://127.0.0.1:8080", "APP_KEY": "...", "ADMIN_KEY": "..."}

`request.session` then holds the session's data in sessiond. django.contrib.auth's login()
creates the session (sessiond keeps sessions per user, so there is none before login and
saving data without a logged-in user raises NotLoggedIn); update_session_auth_hash() rotates
its token; logout() revokes it. The middleware sends sessiond's set_cookie / clear_cookie and
answers 503 when sessiond cannot answer. `request.session.devices()`,
`logout_device(handle)` and `logout_other_devices()` need ADMIN_KEY.
"""

from __future__ import annotations

import copy
import functools
from http.cookies import SimpleCookie
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import patch_vary_headers

from .client import SessiondClient
from .errors import InvalidSession, SessiondUnavailable
from .models import CreatedSession, Session
from .web import (UNAVAILABLE_BODY, UNAVAILABLE_RETRY_AFTER, ConfigurationError, CookieSettings, NotLoggedIn,
                  clean_ip, clean_user_agent, merge_patch, revoke_own_session)

_SETTING_NAMES = {"URL", "APP_KEY", "ADMIN_KEY"}


@functools.lru_cache(maxsize=4)
def _make_clients(url: str, app_key: str, admin_key: str | None) -> tuple[SessiondClient, SessiondClient | None]:
    admin = SessiondClient(url, admin_key) if admin_key is not None else None
    return SessiondClient(url, app_key), admin


def clients() -> tuple[SessiondClient, SessiondClient | None]:
    """The app and admin clients of settings.SESSIOND (made once per configuration)."""
    config = getattr(settings, "SESSIOND", None)
    if not isinstance(config, dict) or not {"URL", "APP_KEY"} <= config.keys():
        raise ImproperlyConfigured('settings.SESSIOND must be a dict with "URL" and "APP_KEY" (and "ADMIN_KEY" for devices)')
    unknown = config.keys() - _SETTING_NAMES
    if unknown:
        raise ImproperlyConfigured(f"settings.SESSIOND has unknown entries {sorted(unknown)}; known: {sorted(_SETTING_NAMES)}")
    try:
        return _make_clients(config["URL"], config["APP_KEY"], config.get("ADMIN_KEY"))
    except ValueError as e:
        raise ImproperlyConfigured(f"settings.SESSIOND: {e}") from None


def cookie_settings() -> CookieSettings:
    try:
        return CookieSettings(settings.SESSION_COOKIE_NAME, settings.SESSION_COOKIE_SAMESITE)
    except ValueError as e:
        raise ImproperlyConfigured(f"settings.SESSION_COOKIE_*: {e}") from None


class SessionStore(SessionBase):
    """A Django session whose data lives in sessiond; the session key is sessiond's token."""

    _session_cache: dict[str, Any]

    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        self._sessiond: Session | None = None
        self._saved: dict[str, Any] = {}
        # Set by SessionMiddleware, for the user's list of devices.
        self.client_ip: str | None = None
        self.client_user_agent: str | None = None
        # sessiond's set_cookie after a create or rotate, its clear_cookie after a revoke.
        self.set_cookie: str | None = None
        self.clear_cookie: str | None = None

    @property
    def sessiond_session(self) -> Session | None:
        """The session as sessiond last answered it (after the data was loaded)."""
        return self._sessiond

    def _token(self) -> str:
        if self._session_key is None:
            raise NotLoggedIn("this session has no sessiond token")
        return self._session_key

    def _data(self) -> dict[str, Any]:
        return dict(self.items())  # loads it on first use

    def _remember(self, session: Session) -> None:
        self._sessiond = session
        self._saved = copy.deepcopy(session.data)

    def _adopt(self, created: CreatedSession) -> None:
        self.set_cookie = cookie_settings().checked(created)
        self._session_key = created.token
        self._remember(created)

    def load(self) -> dict[str, Any]:
        try:
            session = clients()[0].lookup_session(self._token())
        except InvalidSession:
            self._session_key = None
            return {}
        self._remember(session)
        return copy.deepcopy(session.data)

    def exists(self, session_key: str | None) -> bool:
        if session_key is None:
            return False
        try:
            clients()[0].lookup_session(session_key, touch=False)
        except InvalidSession:
            return False
        return True

    def create(self) -> None:
        # sessiond needs the user, which django.contrib.auth.login sets after this: save() creates.
        self._session_key = None
        self._sessiond = None
        self._session_cache = {}
        self.modified = True

    def cycle_key(self) -> None:
        data = self._data()
        if self._sessiond is None:
            super().cycle_key()
            return
        self._adopt(clients()[0].rotate_session(self._token()))
        self._session_cache = data
        self.modified = True

    def save(self, must_create: bool = False) -> None:
        data = self._data()
        user_id = data.get(SESSION_KEY)
        client = clients()[0]
        if self._sessiond is None:
            if user_id is None:
                raise NotLoggedIn("sessiond keeps the sessions of logged-in users only: log the user in "
                                  "(django.contrib.auth.login) before writing to request.session")
            self._adopt(client.create_session(str(user_id), data=data, ip=clean_ip(self.client_ip),
                                              user_agent=clean_user_agent(self.client_user_agent)))
            return
        if user_id is not None and str(user_id) != self._sessiond.user_id:
            raise ConfigurationError("a sessiond session belongs to one user: flush() the session before "
                                     "logging another user in (django.contrib.auth.login does)")
        patch = merge_patch(self._saved, data)
        if patch:
            try:
                self._remember(client.update_session_data(self._token(), patch))
            except InvalidSession:
                raise UpdateError() from None  # ended meanwhile: Django answers SessionInterrupted

    def delete(self, session_key: str | None = None) -> None:
        key = self._session_key if session_key is None else session_key
        if key is None:
            return
        try:
            result = clients()[0].revoke_session(key)
        except InvalidSession:
            return
        if key == self._session_key:
            self._sessiond = None
            self.set_cookie = None
            self.clear_cookie = result.clear_cookie

    @classmethod
    def clear_expired(cls) -> None:
        """Nothing to do: Redis ends sessiond's sessions by their TTLs."""

    def _logged_in(self) -> Session:
        self._data()
        if self._sessiond is None:
            raise NotLoggedIn("nobody is logged in on this request")
        return self._sessiond

    def _admin(self) -> SessiondClient:
        admin = clients()[1]
        if admin is None:
            raise ImproperlyConfigured('devices need settings.SESSIOND["ADMIN_KEY"] (sessiond\'s admin key)')
        return admin

    def devices(self) -> list[Session]:
        """The user's live sessions, newest first."""
        return list(self._admin().iter_user_sessions(self._logged_in().user_id))

    def logout_device(self, handle: str) -> bool:
        """Logs out another of the user's sessions; False when it is not theirs or is gone.
        (The current one logs out with django.contrib.auth.logout.)"""
        session = self._logged_in()
        return handle != session.handle and revoke_own_session(self._admin(), session.user_id, handle)

    def logout_other_devices(self) -> int:
        session = self._logged_in()
        return self._admin().force_logout_user(session.user_id, except_handle=session.handle)


def unavailable_response() -> HttpResponse:
    response = HttpResponse(UNAVAILABLE_BODY, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = UNAVAILABLE_RETRY_AFTER
    response["Cache-Control"] = "no-store"
    return response


def set_cookie_on(response: HttpResponseBase, set_cookie: str) -> None:
    """Puts sessiond's Set-Cookie value on a Django response, attribute for attribute."""
    parsed: SimpleCookie = SimpleCookie()
    parsed.load(set_cookie)
    for name, morsel in parsed.items():
        response.cookies[name] = morsel


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's SessionMiddleware with sessiond's cookie and a 503 when sessiond is down."""

    def process_request(self, request: HttpRequest) -> None:
        super().process_request(request)
        if isinstance(request.session, SessionStore):
            request.session.client_ip = request.META.get("REMOTE_ADDR")
            request.session.client_user_agent = request.META.get("HTTP_USER_AGENT")

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return unavailable_response() if isinstance(exception, SessiondUnavailable) else None

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        session = getattr(request, "session", None)
        if not isinstance(session, SessionStore):
            return super().process_response(request, response)
        if session.accessed:
            patch_vary_headers(response, ("Cookie",))
        empty = session.is_empty()
        if session.modified and not empty and response.status_code < 500:
            try:
                session.save()
            except SessiondUnavailable:
                return unavailable_response()
            except UpdateError:
                raise SessionInterrupted("The session ended before the request finished; log in again.") from None
        cookies = cookie_settings()
        if session.set_cookie is not None:
            set_cookie_on(response, session.set_cookie)
        elif empty and cookies.name in request.COOKIES:
            # Logged out, or the cookie's session is gone: sessiond's clear_cookie.
            set_cookie_on(response, session.clear_cookie or cookies.clear())
        return response
