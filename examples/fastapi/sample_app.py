"""The FastAPI sample: log in, see who you are, your devices, log out; sessions in sessiond.

SESSIOND_URL, SESSIOND_APP_KEY and SESSIOND_ADMIN_KEY come from the environment. Run it with
`uvicorn sample_app:app` (in this directory).
"""

import os

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

from sessiond_client import AsyncSessiondClient
from sessiond_client.asgi import SessiondMiddleware, session_of

# The five lines.
URL = os.environ.get("SESSIOND_URL", "http://127.0.0.1:8080")
app = FastAPI()
app.add_middleware(SessiondMiddleware, client=AsyncSessiondClient(URL, os.environ["SESSIOND_APP_KEY"]),
                   admin_client=AsyncSessiondClient(URL, os.environ["SESSIOND_ADMIN_KEY"]))

# Sample only: no accounts, one password per user.
PASSWORDS = {"alice": "alice-password", "bob": "bob-password"}


class Login(BaseModel):
    username: str
    password: str


@app.post("/login")
async def login(body: Login, request: Request) -> dict[str, str]:
    if PASSWORDS.get(body.username) != body.password:
        raise HTTPException(401, "wrong user name or password")
    await session_of(request).login(body.username, {"theme": "light"})  # a new token, always
    return {"user": body.username}


@app.get("/")
async def home(request: Request) -> dict[str, str | None]:
    session = session_of(request)
    return {"user": session.user_id, "theme": session.get("theme")}


@app.post("/theme/{theme}")
async def set_theme(theme: str, request: Request) -> dict[str, str]:
    session = session_of(request)
    if session.user_id is None:
        raise HTTPException(401, "log in first")
    session["theme"] = theme  # saved to sessiond before the answer goes out
    return {"theme": theme}


@app.get("/devices")
async def devices(request: Request) -> list[dict[str, str | bool | None]]:
    session = session_of(request)
    if session.user_id is None:
        raise HTTPException(401, "log in first")
    return [{"handle": s.handle, "current": s.handle == session.handle, "ip": s.ip, "user_agent": s.user_agent,
             "since": s.created_at.isoformat()} for s in await session.devices()]


@app.post("/devices/logout-others")
async def logout_other_devices(request: Request) -> dict[str, int]:
    session = session_of(request)
    if session.user_id is None:
        raise HTTPException(401, "log in first")
    return {"logged_out": await session.logout_other_devices()}


@app.post("/logout")
async def logout(request: Request) -> dict[str, bool]:
    await session_of(request).logout()
    return {"logged_out": True}
