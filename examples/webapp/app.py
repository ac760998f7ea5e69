"""A small monolith whose logins live in sessiond: the example of examples/webapp/README.md.

DEMO ONLY: anyone who knows the one demo password can log in as any user name. Everything
else (the session cookie, the CSRF defence, the per-user checks) is done the way a real
app should do it.

The app talks to sessiond through the sessiond-client package (clients/python): its Flask
session interface looks the cookie's session up on every request, sets and clears the cookie
as sessiond says, and answers 503 while sessiond cannot answer. Two keys, each for its own job:

    APP_KEY     the session of each request: lookup, login (create or rotate), data, logout
    ADMIN_KEY   the devices and admin pages: list a user's sessions, revoke one by handle,
                force-logout a user

Run it (see README.md):  SESSIOND_URL=... APP_KEY=... ADMIN_KEY=... python app.py
"""

from __future__ import annotations

import functools
import hmac
import os
import re
import secrets
import sys
import urllib.parse
from datetime import datetime, timezone

from flask import Flask, abort, g, redirect, render_template, request

from sessiond_client import InvalidRequest, SessiondClient, SessiondUnavailable
from sessiond_client.flask import SessiondFlask, current_session

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
CONTROL_CHARS_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")

app = Flask(__name__)
ADMIN = SessiondClient(SESSIOND_URL, ADMIN_KEY)
SessiondFlask(app, client=SessiondClient(SESSIOND_URL, APP_KEY), admin_client=ADMIN, cookie_name=COOKIE_NAME)

# --------------------------------------------------------------------------------------------
# Request checks: the session on every page, CSRF on every POST.


def login_required(view):
    """No valid session, no page (the session interface has already cleared a dead cookie)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        session = current_session()
        if session.session is None:
            return redirect("/login?msg=login_required", code=303)
        g.session = session.session
        g.user_id = session.user_id
        g.is_admin = session.get("role") == "admin"
        g.csrf = session.get("csrf", "")
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


@app.errorhandler(SessiondUnavailable)
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
def format_time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


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

    # A browser that still holds a session gets a new token (rotated if it was this user's,
    # else the old session is revoked), so logins never pile up unseen. The session interface
    # sends sessiond's set_cookie:
    # __Host-session=TOKEN; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=N
    current_session().login(username, {
        "role": "admin" if username in ADMINS else "user",
        # The CSRF token lives in the session itself: one per login, gone at logout.
        "csrf": secrets.token_urlsafe(32),
    })
    return redirect("/", code=303)


def end_current_session():
    """Revokes the session; the session interface sends sessiond's clear_cookie."""
    current_session().logout()
    return redirect("/login?msg=logged_out", code=303)


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
    sessions = current_session().devices()
    return render_template("devices.html", sessions=sessions, total=len(sessions),
                           current=g.session.handle)


@app.post("/devices/logout")
@login_required
def logout_device():
    """Log out one of the user's own devices, by the session's handle."""
    check_csrf()
    handle = request.form.get("handle", "")
    if not HANDLE_RE.match(handle):
        return redirect("/devices?msg=device_not_found", code=303)
    if handle == g.session.handle:
        return end_current_session()
    # logout_device checks that the session is the user's own (the admin key could revoke any).
    code = "device_logged_out" if current_session().logout_device(handle) else "device_not_found"
    return redirect(f"/devices?msg={code}", code=303)


@app.post("/devices/logout-others")
@login_required
def logout_other_devices():
    check_csrf()
    n = current_session().logout_other_devices()
    return redirect(f"/devices?msg=others_logged_out&n={n}", code=303)


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
        try:
            listing = ADMIN.list_user_sessions(user, limit=100)
        except InvalidRequest:
            abort(404, "No such user.")
    return render_template("admin.html", user=user, listing=listing)


@app.post("/admin/logout-user")
@login_required
@admin_required
def admin_logout_user():
    check_csrf()
    user = request.form.get("user", "").strip()
    if not user or len(user) > 256 or CONTROL_CHARS_RE.search(user):
        abort(404, "No such user.")
    try:
        n = ADMIN.force_logout_user(user)
    except InvalidRequest:
        abort(404, "No such user.")
    query = urllib.parse.urlencode({"user": user, "msg": "user_logged_out", "n": n})
    return redirect(f"/admin?{query}", code=303)


if __name__ == "__main__":
    # Flask's own server is enough for a demo; run a real WSGI server (gunicorn) in production,
    # behind TLS: the cookie is Secure, so browsers send it over https only (and http://localhost).
    app.run(host=_env("WEBAPP_HOST", "127.0.0.1"), port=int(_env("WEBAPP_PORT", "5000")),
            threaded=True, use_reloader=False)
