"""A small monolith whose logins live in sessiond: the example of examples/webapp/README.md.

DEMO ONLY: anyone who knows the one demo password can log in as any user name. Everything
else (the session cookie, the CSRF defence, the per-user checks) is done the way a real
app should do it.

The app talks to sessiond over its public HTTP API with three keys, each for its own job:

    READER_KEY  GET /v1/session on every page (is the cookie's session valid? whose is it?)
    APP_KEY     POST /v1/sessions at login, DELETE /v1/session at logout
    ADMIN_KEY   the devices and admin pages: list a user's sessions, revoke one by handle,
                force-logout a user

Run it (see README.md):  SESSIOND_URL=... READER_KEY=... APP_KEY=... ADMIN_KEY=... python app.py
"""

from __future__ import annotations

import functools
import hmac
import os
import re
import secrets
import sys
import threading
import urllib.parse
from datetime import datetime, timezone

import requests
from flask import Flask, abort, g, redirect, render_template, request

# --------------------------------------------------------------------------------------------
# Configuration: all from the environment.


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, "")
    if value:
        return value
    if default is None:
        sys.exit(f"webapp: configuration error: {name} must be set")
    return default


SESSIOND_URL = _env("SESSIOND_URL", "http://127.0.0.1:8080").rstrip("/")
READER_KEY = _env("READER_KEY")
APP_KEY = _env("APP_KEY")
ADMIN_KEY = _env("ADMIN_KEY")
# Must match sessiond's SESSIOND_COOKIE_NAME: sessiond writes set_cookie / clear_cookie with it.
COOKIE_NAME = _env("SESSIOND_COOKIE_NAME", "__Host-session")
DEMO_PASSWORD = _env("WEBAPP_DEMO_PASSWORD", "demo")
# User names that get the admin role at login.
ADMINS = frozenset(u.strip() for u in _env("WEBAPP_ADMINS", "admin").split(",") if u.strip())
# The origin the browser sees, e.g. https://app.example.com. Empty: taken from the request
# (fine when the app is reached directly; set it behind a reverse proxy).
PUBLIC_ORIGIN = os.environ.get("WEBAPP_ORIGIN", "").rstrip("/")

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
HANDLE_RE = re.compile(r"^[A-Za-z0-9_-]{16}$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
CONTROL_CHARS_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")

app = Flask(__name__)

# --------------------------------------------------------------------------------------------
# The sessiond client: one small function per API call used.


class StoreUnavailable(Exception):
    """sessiond (or its Redis) could not answer; the page says so instead of guessing."""


_local = threading.local()


def _http() -> requests.Session:
    # One connection pool per thread (requests.Session is not documented as thread-safe).
    if not hasattr(_local, "http"):
        _local.http = requests.Session()
    return _local.http


def sessiond(method: str, path: str, key: str, *, token: str | None = None,
             json: dict | None = None, params: dict | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"}
    if token is not None:
        headers["X-Session-Token"] = token
    try:
        r = _http().request(method, SESSIOND_URL + path, headers=headers, json=json,
                            params=params, timeout=5)
    except requests.RequestException as e:
        app.logger.error("sessiond unreachable: %s %s: %s", method, path, type(e).__name__)
        raise StoreUnavailable() from None
    if r.status_code >= 500:
        app.logger.error("sessiond answered %s to %s %s", r.status_code, method, path)
        raise StoreUnavailable()
    if r.status_code in (400, 403, 413) or (r.status_code == 401 and
                                             _error_code(r) == "invalid_api_key"):
        # A bug in this app or a wrong key in its configuration: never the user's fault.
        app.logger.error("sessiond refused %s %s: %s %s", method, path, r.status_code,
                         _error_code(r))
        raise StoreUnavailable()
    return r


def _error_code(r: requests.Response) -> str:
    try:
        return str(r.json().get("error"))
    except ValueError:
        return "(no JSON body)"


def user_path(user_id: str) -> str:
    # Percent-encode everything, "." too: HTTP clients (requests, curl) would otherwise turn
    # the user ids "." and ".." into dot segments of the path and call another route.
    return ("/v1/users/" + urllib.parse.quote(user_id, safe="").replace(".", "%2E")
            + "/sessions")


def lookup_session(token: str) -> dict | None:
    """GET /v1/session (reader): the session of the token, or None when it is not valid."""
    r = sessiond("GET", "/v1/session", READER_KEY, token=token)
    return r.json() if r.status_code == 200 else None


def clear_cookie_header() -> str:
    # What sessiond's clear_cookie says; built here when there is no sessiond answer to use.
    return f"{COOKIE_NAME}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"


# --------------------------------------------------------------------------------------------
# Request checks: the session on every page, CSRF on every POST.


def login_required(view):
    """Looks the cookie's session up in sessiond on every request; no valid session, no page."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        token = request.cookies.get(COOKIE_NAME)
        # Anything not shaped like a token is no session (and never reaches sessiond).
        session = lookup_session(token) if token and TOKEN_RE.match(token) else None
        if session is None:
            response = redirect("/login?msg=login_required", code=303)
            if token is not None:
                response.headers.add("Set-Cookie", clear_cookie_header())
            return response
        g.token = token
        g.session = session
        g.user_id = session["user_id"]
        g.is_admin = session["data"].get("role") == "admin"
        g.csrf = session["data"].get("csrf", "")
        return view(*args, **kwargs)

    return wrapper


def expected_origin() -> str:
    return PUBLIC_ORIGIN or request.host_url.rstrip("/")


def same_origin_request() -> bool:
    """The Origin header (or, without one, the Referer) names this app.

    Browsers send Origin on every POST and scripts cannot forge it, so a form posted from
    another site is told apart here even if it carried the cookie.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        referer = request.headers.get("Referer")
        if not referer:
            return False
        parts = urllib.parse.urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    return hmac.compare_digest(origin.encode(), expected_origin().encode())


def check_csrf() -> None:
    """Every state-changing POST of a logged-in user: same origin AND the session's CSRF token."""
    if not same_origin_request():
        abort(403, "This form was not sent from this site (Origin check).")
    sent = request.form.get("csrf", "")
    if not g.csrf or not hmac.compare_digest(sent.encode(), g.csrf.encode()):
        abort(403, "Missing or wrong CSRF token.")


@app.after_request
def security_headers(response):
    # Pages are per user: never cache them. No framing (clickjacking), no inline scripts.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@app.errorhandler(StoreUnavailable)
def store_unavailable(_e):
    return render_template("error.html", title="Try again in a moment",
                           text="The session store is not answering right now."), 503


@app.errorhandler(403)
@app.errorhandler(404)
def http_error(e):
    return render_template("error.html", title=e.name, text=e.description), e.code


# Messages shown after a redirect: the URL carries only a fixed code (and a count).
MESSAGES = {
    "login_required": "Please log in.",
    "logged_out": "You are logged out.",
    "bad_login": "Wrong user name or password.",
    "device_logged_out": "That device is logged out.",
    "device_not_found": "No such device among your sessions (maybe it has already ended).",
    "others_logged_out": "Logged out {n} other device(s).",
    "user_logged_out": "Logged this user out everywhere: {n} session(s) ended.",
}


@app.context_processor
def message_context():
    code = request.args.get("msg", "")
    text = MESSAGES.get(code, "")
    if text:
        n = request.args.get("n", "0")
        text = text.format(n=int(n) if n.isdigit() else 0)
    return {"message": text, "message_code": code if text else ""}


@app.template_filter("when")
def format_time(value: str | None) -> str:
    if not value:
        return "-"
    t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# --------------------------------------------------------------------------------------------
# Pages.


@app.get("/login")
def login_form():
    return render_template("login.html")


@app.post("/login")
def login():
    # There is no session yet, so no CSRF token: the Origin check stops login CSRF
    # (another site logging the browser in to an account of the attacker's).
    if not same_origin_request():
        abort(403, "This form was not sent from this site (Origin check).")
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    password_ok = hmac.compare_digest(password.encode(), DEMO_PASSWORD.encode())
    if not USERNAME_RE.match(username) or not password_ok:
        return redirect("/login?msg=bad_login", code=303)

    # A browser that still holds a session: end it, so logins never pile up unseen.
    old_token = request.cookies.get(COOKIE_NAME)
    if old_token and TOKEN_RE.match(old_token):
        sessiond("DELETE", "/v1/session", APP_KEY, token=old_token)

    user_agent = CONTROL_CHARS_RE.sub("", request.headers.get("User-Agent", ""))[:512]
    r = sessiond("POST", "/v1/sessions", APP_KEY, json={
        "user_id": username,
        "data": {
            "role": "admin" if username in ADMINS else "user",
            # The CSRF token lives in the session itself: one per login, gone at logout.
            "csrf": secrets.token_urlsafe(32),
        },
        # sessiond takes strings here ("" for none; null is refused).
        "ip": (request.remote_addr or "")[:64],
        "user_agent": user_agent,
    })
    created = r.json()
    response = redirect("/", code=303)
    # sessiond's set_cookie: __Host-session=TOKEN; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=N
    response.headers.add("Set-Cookie", created["set_cookie"])
    return response


def end_current_session():
    """DELETE /v1/session (app) and sessiond's clear_cookie to the browser."""
    r = sessiond("DELETE", "/v1/session", APP_KEY, token=g.token)
    response = redirect("/login?msg=logged_out", code=303)
    response.headers.add("Set-Cookie", r.json()["clear_cookie"])
    return response


@app.post("/logout")
@login_required
def logout():
    check_csrf()
    return end_current_session()


@app.get("/")
@login_required
def home():
    return render_template("home.html")


@app.get("/devices")
@login_required
def devices():
    r = sessiond("GET", user_path(g.user_id), ADMIN_KEY, params={"limit": 100})
    listing = r.json()
    return render_template("devices.html", sessions=listing["sessions"], total=listing["total"],
                           current=g.session["handle"])


@app.post("/devices/logout")
@login_required
def logout_device():
    """Log out one of the user's own devices, by the session's handle."""
    check_csrf()
    handle = request.form.get("handle", "")
    if not HANDLE_RE.match(handle):
        return redirect("/devices?msg=device_not_found", code=303)
    if handle == g.session["handle"]:
        return end_current_session()
    # The admin key can revoke anyone's session: check that this one is the user's own.
    r = sessiond("GET", "/v1/sessions/" + handle, ADMIN_KEY)
    if r.status_code != 200 or r.json()["user_id"] != g.user_id:
        return redirect("/devices?msg=device_not_found", code=303)
    r = sessiond("DELETE", "/v1/sessions/" + handle, ADMIN_KEY)
    code = "device_logged_out" if r.status_code == 200 else "device_not_found"
    return redirect(f"/devices?msg={code}", code=303)


@app.post("/devices/logout-others")
@login_required
def logout_other_devices():
    check_csrf()
    r = sessiond("DELETE", user_path(g.user_id), ADMIN_KEY,
                 params={"except": g.session["handle"]})
    return redirect(f"/devices?msg=others_logged_out&n={r.json()['revoked']}", code=303)


def admin_required(view):
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not g.is_admin:
            abort(403, "Admins only.")
        return view(*args, **kwargs)

    return wrapper


@app.get("/admin")
@login_required
@admin_required
def admin():
    user = request.args.get("user", "").strip()
    listing = None
    if user:
        if len(user) > 256 or CONTROL_CHARS_RE.search(user):
            abort(404, "No such user.")
        listing = sessiond("GET", user_path(user), ADMIN_KEY, params={"limit": 100}).json()
    return render_template("admin.html", user=user, listing=listing)


@app.post("/admin/logout-user")
@login_required
@admin_required
def admin_logout_user():
    check_csrf()
    user = request.form.get("user", "").strip()
    if not user or len(user) > 256 or CONTROL_CHARS_RE.search(user):
        abort(404, "No such user.")
    r = sessiond("DELETE", user_path(user), ADMIN_KEY)
    query = urllib.parse.urlencode({"user": user, "msg": "user_logged_out",
                                    "n": r.json()["revoked"]})
    return redirect(f"/admin?{query}", code=303)


if __name__ == "__main__":
    # Flask's own server is enough for a demo; run a real WSGI server (gunicorn) in production,
    # behind TLS: the cookie is Secure, so browsers send it over https only (and http://localhost).
    app.run(host=_env("WEBAPP_HOST", "127.0.0.1"), port=int(_env("WEBAPP_PORT", "5000")),
            threaded=True, use_reloader=False)
