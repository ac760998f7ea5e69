"""Views and URLs of the Django sample: log in, see who you are, your devices, log out."""

from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path
from django.utils.html import escape
from django.views.decorators.http import require_GET, require_POST

from sessiond_client.django import SessionStore


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return HttpResponse("You are not logged in.")
    return HttpResponse(f"Hello, <span id=user>{escape(request.user.get_username())}</span>")


@require_POST
def login_view(request: HttpRequest) -> HttpResponse:
    user = authenticate(request, username=request.POST.get("username", ""),
                        password=request.POST.get("password", ""))
    if user is None:
        return HttpResponse("Wrong user name or password.", status=401)
    login(request, user)  # creates the session in sessiond, under a new token
    return HttpResponseRedirect("/")


@require_GET
def devices(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return HttpResponseRedirect("/")
    assert isinstance(request.session, SessionStore)
    current = request.session.sessiond_session
    rows = "".join(
        f"<li data-handle={s.handle}{' class=current' if current and s.handle == current.handle else ''}>"
        f"{escape(s.user_agent or '-')} from {escape(s.ip or '-')}, since {s.created_at:%Y-%m-%d %H:%M}</li>"
        for s in request.session.devices())
    return HttpResponse(f"<ul id=devices>{rows}</ul>")


@require_POST
def logout_other_devices(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return HttpResponseRedirect("/")
    assert isinstance(request.session, SessionStore)
    return HttpResponse(f"Logged out {request.session.logout_other_devices()} other device(s).")


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)  # revokes the session in sessiond; the middleware clears the cookie
    return HttpResponseRedirect("/")


urlpatterns = [
    path("", home),
    path("login", login_view),
    path("devices", devices),
    path("devices/logout-others", logout_other_devices),
    path("logout", logout_view),
]
