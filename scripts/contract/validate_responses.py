#!/usr/bin/env python3
"""Contract test: real traffic through every operation of openapi.yaml, every answer checked.

    SESSIOND_URL=http://127.0.0.1:PORT SESSIOND_READER_KEY=... SESSIOND_APP_KEY=... \
    SESSIOND_ADMIN_KEY=... python validate_responses.py [--spec openapi.yaml] [--pause-redis HOST:PORT]

Drives a running sessiond through each operation and method of the document with the keys of
all three roles, on its success and error paths (200/201/400/401/403/404/405/412/413, and 503
with --pause-redis, which pauses that Redis with CLIENT PAUSE: pass only a Redis of your own).
Every response is validated against openapi.yaml with openapi-core (status declared for the
operation, declared headers present when required and matching their schemas, content type,
body against its schema), and on top of that:

- the status is the one the scenario expects, and the error code fits the status;
- every header the server sends beyond the generic HTTP ones is declared for that response;
- JSON answers carry `Cache-Control: no-store`; `WWW-Authenticate` comes exactly with
  `invalid_api_key`; `Allow` of a 405 lists exactly the path's methods in openapi.yaml;
- no API key ever appears in a response, and a token only in the answers of create and rotate;
- every (operation, declared status) pair was exercised (503 only with --pause-redis).

Any mismatch fails the run (exit 1) and prints the request and the response with every token,
API key and cookie replaced by a placeholder. The keys come from the environment, never argv.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import requests
import yaml  # PyYAML, a dependency of openapi-core
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
TOKEN_RE = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048](?![A-Za-z0-9_-])")
# Headers any HTTP answer may carry; every other header must be declared for the response.
GENERIC_HEADERS = {"content-type", "content-length", "date", "server", "cache-control", "connection",
                   "keep-alive", "transfer-encoding"}
ERROR_CODES = {
    400: {"invalid_request"},
    401: {"invalid_api_key", "invalid_session"},
    403: {"forbidden"},
    404: {"not_found"},
    405: {"method_not_allowed"},
    412: {"precondition_failed"},
    413: {"payload_too_large"},
    503: {"store_unavailable"},
    507: {"store_full"},
    500: {"internal_error"},
}


class SpecRequest:
    """An openapi-core request: what was sent, located on the document's own server URL so the
    path finder matches (the server under test listens on another port)."""

    def __init__(self, host_url: str, method: str, path: str, query: str, headers: dict[str, str],
                 cookies: dict[str, str], body: Optional[bytes]):
        self.host_url = host_url
        self.path = path
        self.method = method.lower()
        self.body = body
        self.content_type = headers.get("Content-Type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(urllib.parse.parse_qsl(query, keep_blank_values=True)),
            header=Headers(headers),
            cookie=ImmutableMultiDict(cookies),
        )


class SpecResponse:
    def __init__(self, response: requests.Response):
        self.status_code = response.status_code
        self.data = response.content
        self.content_type = response.headers.get("Content-Type", "")
        self.headers = Headers(list(response.headers.items()))


@dataclass
class Failure:
    step: str
    problems: list[str]
    request: str
    response: str


@dataclass
class Contract:
    base_url: str
    keys: dict[str, str]
    spec_path: Path
    max_data_bytes: int
    idle_timeout: int = 1800
    verbose: bool = False
    failures: list[Failure] = field(default_factory=list)
    exercised: dict[tuple[str, int], int] = field(default_factory=dict)
    requests_sent: int = 0
    secrets: dict[str, str] = field(default_factory=dict)
    generic_operations: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.openapi = OpenAPI.from_file_path(str(self.spec_path))
        self.document: dict[str, Any] = yaml.safe_load(self.spec_path.read_text())
        self.spec_server = self.document["servers"][0]["url"].rstrip("/")
        self.http = requests.Session()
        for role, key in self.keys.items():
            self.secrets[key] = f"<{role} API key>"
        # (path template, method) -> operation, and operationId -> (path, method)
        self.operations: dict[str, tuple[str, str]] = {}
        for path, item in self.document["paths"].items():
            for method in METHODS:
                if method in item:
                    self.operations[item[method]["operationId"]] = (path, method)

    # ---------------------------------------------------------------- redaction

    def note_token(self, token: Any) -> None:
        if isinstance(token, str) and token:
            self.secrets[token] = "<token>"

    def redact(self, text: str) -> str:
        for secret, placeholder in list(self.secrets.items()):
            if secret:
                text = text.replace(secret, placeholder)
        return TOKEN_RE.sub("<token-like>", text)

    @staticmethod
    def clip(text: str, limit: int = 1500) -> str:
        return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"

    def describe_request(self, prepared: requests.PreparedRequest) -> str:
        lines = [f"{prepared.method} {self.redact(prepared.path_url)}"]
        for name, value in prepared.headers.items():
            if name.lower() in ("authorization", "x-session-token", "cookie"):
                value = self.redact(value)
                if name.lower() == "authorization" and "API key>" not in value:
                    value = "<redacted>"
            lines.append(f"{name}: {value}")
        body = prepared.body
        if isinstance(body, chunked):
            body = body.data
        if body:
            if isinstance(body, bytes):
                body = body.decode("utf-8", "replace")
            lines.append("")
            lines.append(self.clip(self.redact(body)))
        return "\n".join(lines)

    def describe_response(self, response: Optional[requests.Response]) -> str:
        if response is None:
            return "(no response)"
        lines = [f"HTTP {response.status_code} {response.reason}"]
        for name, value in response.headers.items():
            lines.append(f"{name}: {self.redact(value)}")
        if response.content:
            lines.append("")
            lines.append(self.clip(self.redact(response.content.decode("utf-8", "replace"))))
        return "\n".join(lines)

    # ---------------------------------------------------------------- requests

    def auth(self, role: Optional[str]) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"} if role else {}

    def call(
        self,
        step: str,
        method: str,
        path: str,
        *,
        expect: int,
        role: Optional[str] = None,
        headers: Optional[dict[str, str]] = None,
        query: Optional[dict[str, str] | str] = None,
        body: Optional[bytes] = None,
        json_body: Any = None,
        content_type: Optional[str] = None,
        operation: Optional[str] = None,
        code: Optional[str] = None,
        check: Optional[Callable[[requests.Response, list[str]], None]] = None,
    ) -> Optional[requests.Response]:
        """Sends one request, validates the answer, records failures. `operation` is the
        operationId whose responses describe the answer (default: the one of path and method);
        `code` the expected `error` of an error answer."""
        all_headers = dict(self.auth(role))
        if headers:
            all_headers.update(headers)
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode()
            content_type = content_type or "application/json"
        if content_type:
            all_headers["Content-Type"] = content_type
        if isinstance(query, dict):
            query = urllib.parse.urlencode(query)
        url = self.base_url + path + (f"?{query}" if query else "")
        request = requests.Request(method.upper(), url, headers=all_headers, data=body)
        prepared = self.http.prepare_request(request)
        if "Cookie" not in all_headers:
            prepared.headers.pop("Cookie", None)
        response = None
        problems: list[str] = []
        try:
            response = self.http.send(prepared, timeout=15, allow_redirects=False)
        except requests.RequestException as error:
            problems.append(f"request failed: {type(error).__name__}: {self.redact(str(error))}")
        self.requests_sent += 1
        if response is not None:
            problems += self.validate(prepared, response, expect, operation, code)
            if check is not None and not problems:
                try:
                    check(response, problems)
                except Exception as error:  # a check that crashed is a failed check
                    problems.append(f"check raised {type(error).__name__}: {self.redact(str(error))}")
        if problems:
            self.failures.append(Failure(step, problems, self.describe_request(prepared), self.describe_response(response)))
            print(f"FAIL  {step}", flush=True)
        elif self.verbose:
            print(f"ok    {step}: {method.upper()} {self.redact(path)} -> {response.status_code}", flush=True)
        return response

    # ---------------------------------------------------------------- validation

    def match_operation(self, path: str, method: str) -> Optional[str]:
        segments = path.split("/")
        for op_id, (template, op_method) in self.operations.items():
            t_segments = template.split("/")
            if op_method != method or len(t_segments) != len(segments):
                continue
            if all((t.startswith("{") and s) or t == s for t, s in zip(t_segments, segments)):
                return op_id
        return None

    def path_methods(self, path: str) -> list[str]:
        segments = path.split("/")
        found = []
        for template, op_method in self.operations.values():
            t_segments = template.split("/")
            if len(t_segments) == len(segments) and all(
                (t.startswith("{") and s) or t == s for t, s in zip(t_segments, segments)
            ):
                found.append(op_method.upper())
        return found

    def declared_response(self, op_id: str, status: int) -> Optional[dict[str, Any]]:
        template, method = self.operations[op_id]
        responses = self.document["paths"][template][method]["responses"]
        response = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
        return self.resolve(response) if response else None

    def resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            target: Any = self.document
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def validate(self, prepared: requests.PreparedRequest, response: requests.Response, expect: int,
                 operation: Optional[str], code: Optional[str]) -> list[str]:
        problems: list[str] = []
        parsed = urllib.parse.urlsplit(prepared.url)
        method = prepared.method.lower()
        path_methods = self.path_methods(parsed.path)
        op_id = operation or self.match_operation(parsed.path, method)
        if op_id is None and response.status_code == 405 and path_methods:
            # A method the path does not have: its 405 is described on each operation of the path.
            op_id = self.match_operation(parsed.path, path_methods[0].lower())
        if response.status_code != expect:
            problems.append(f"status {response.status_code}, expected {expect}")
        if op_id is None:
            problems.append("no operation of openapi.yaml describes this request")
            return problems

        # Which (operation, status) pairs the run has seen; a path's 405 counts for each of its
        # operations (it is declared on each).
        if response.status_code == 405 and operation is None:
            for m in path_methods:
                other = self.match_operation(parsed.path, m.lower())
                if other:
                    self.exercised[(other, 405)] = self.exercised.get((other, 405), 0) + 1
        else:
            self.exercised[(op_id, response.status_code)] = self.exercised.get((op_id, response.status_code), 0) + 1

        template, op_method = self.operations[op_id]
        concrete_path = parsed.path
        if operation is not None and self.match_operation(parsed.path, op_method) != op_id:
            # Validated as another operation (an unknown route's 404): use that operation's path.
            concrete_path = re.sub(r"\{[^}]+\}", "AAAAAAAAAAAAAAAA", template)
        raw_body = prepared.body.data if isinstance(prepared.body, chunked) else prepared.body
        spec_request = SpecRequest(
            self.spec_server, op_method, concrete_path, parsed.query, {k: v for k, v in prepared.headers.items()}, {},
            raw_body.encode() if isinstance(raw_body, str) else raw_body,
        )
        spec_response = SpecResponse(response)
        if method == "head":
            # No body in an answer to HEAD: validate the headers only.
            declared = self.declared_response(op_id, response.status_code)
            if declared is None:
                problems.append(f"status {response.status_code} is not declared for {op_id}")
        else:
            try:
                self.openapi.validate_response(spec_request, spec_response)
            except Exception as error:  # openapi-core raises a tree of validation errors
                problems.append("openapi-core: " + self.redact(self.explain(error)))

        declared = self.declared_response(op_id, response.status_code) or {}
        declared_headers = {name.lower(): self.resolve(h) for name, h in (declared.get("headers") or {}).items()}
        for name, header in declared_headers.items():
            if header.get("required") and name not in {k.lower() for k in response.headers}:
                problems.append(f"required header {name} missing")
        for name in response.headers:
            if name.lower() not in GENERIC_HEADERS and name.lower() not in declared_headers:
                problems.append(f"header {name} is not declared for {op_id} {response.status_code}")
        content_type = response.headers.get("Content-Type", "")
        declared_types = list((declared.get("content") or {}).keys())
        if declared_types and content_type.split(";")[0].strip() not in declared_types:
            problems.append(f"Content-Type {content_type!r} is not one of {declared_types}")
        if content_type.startswith("application/json") and response.headers.get("Cache-Control") != "no-store":
            problems.append(f"JSON answer with Cache-Control {response.headers.get('Cache-Control')!r}, expected no-store")
        if "X-Request-Id" not in response.headers:
            problems.append("no X-Request-Id")

        body: Any = None
        if method != "head" and response.content and content_type.startswith("application/json"):
            try:
                body = json.loads(response.content)
            except ValueError:
                problems.append("body is not JSON")
        if response.status_code >= 400 and method != "head":
            error_code = body.get("error") if isinstance(body, dict) else None
            if error_code not in ERROR_CODES.get(response.status_code, set()):
                problems.append(f"error code {error_code!r} does not fit status {response.status_code}")
            if code is not None and error_code != code:
                problems.append(f"error code {error_code!r}, expected {code!r}")
            has_www = "WWW-Authenticate" in response.headers
            if has_www != (error_code == "invalid_api_key"):
                problems.append(f"WWW-Authenticate {'present' if has_www else 'absent'} with error {error_code!r}")
        if response.status_code == 405:
            allow = [m.strip() for m in response.headers.get("Allow", "").split(",") if m.strip()]
            if sorted(allow) != sorted(path_methods):
                problems.append(f"Allow {allow} is not the path's methods in openapi.yaml {path_methods}")

        # Secrets: keys never; tokens only in create and rotate answers.
        text = response.content.decode("utf-8", "replace") + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        for key in self.keys.values():
            if key in text:
                problems.append("an API key appears in the response")
        if op_id not in ("createSession", "rotateSession") or response.status_code >= 300:
            if TOKEN_RE.search(text):
                problems.append("a token-shaped string appears in a response that must not carry a token")
        if isinstance(body, dict) and response.status_code < 300:
            self.note_token(body.get("token"))
        return problems

    @staticmethod
    def explain(error: BaseException) -> str:
        parts = [f"{type(error).__name__}: {error}"]
        seen = set()

        def walk(e: Any, depth: int) -> None:
            if id(e) in seen or depth > 6:
                return
            seen.add(id(e))
            for attr in ("schema_errors", "context"):
                children = getattr(e, attr, None)
                if children:
                    for child in list(children):
                        message = getattr(child, "message", None) or str(child)
                        where = "/".join(str(p) for p in getattr(child, "absolute_path", []) or [])
                        parts.append("  " * depth + f"- {type(child).__name__}: {message}" + (f" (at /{where})" if where else ""))
                        walk(child, depth + 1)
            cause = e.__cause__ or e.__context__
            if cause is not None and id(cause) not in seen:
                parts.append("  " * depth + f"caused by {type(cause).__name__}: {cause}")
                walk(cause, depth + 1)

        walk(error, 1)
        return "\n".join(parts)

    # ---------------------------------------------------------------- helpers

    def create(self, step: str, user_id: str, role: str = "app", **extra: Any) -> dict[str, Any]:
        body = {"user_id": user_id, **extra}
        response = self.call(step, "POST", "/v1/sessions", role=role, json_body=body, expect=201)
        if response is None or response.status_code != 201:
            raise SystemExit(f"cannot go on: {step} did not create a session")
        return response.json()

    def expect_equal(self, what: str, actual: Any, expected: Any) -> Callable[[requests.Response, list[str]], None]:
        def check(_: requests.Response, problems: list[str]) -> None:
            if actual() != expected:
                problems.append(f"{what}: {self.redact(repr(actual()))}, expected {self.redact(repr(expected))}")
        return check


# The operations the scenarios below drive by hand; any other operation of openapi.yaml gets
# generic probes.
SCENARIO_OPERATIONS = {"createSession", "lookupSession", "updateSessionData", "revokeSession", "rotateSession",
                       "listUserSessions", "forceLogoutUser", "readSessionByHandle", "revokeSessionByHandle",
                       "health", "readiness"}


class chunked:
    """A body sent with `Transfer-Encoding: chunked` (no Content-Length), in 16 KiB chunks."""

    def __init__(self, data: bytes):
        self.data = data

    def __iter__(self):
        return (self.data[i:i + 16384] for i in range(0, len(self.data), 16384))


def user_path(user_id: str) -> str:
    return "/v1/users/" + urllib.parse.quote(user_id, safe="") + "/sessions"


def run_scenarios(c: Contract, pause_redis: Optional[str]) -> None:
    run = f"{os.getpid():x}{int(time.time() * 1000) % 10**8:x}"
    alice = f"contract-alice-{run}"
    bob = f"contract-bob-é€😀-{run}"

    def checks(*fns: Callable[[requests.Response, list[str]], None]) -> Callable[[requests.Response, list[str]], None]:
        def check(response: requests.Response, problems: list[str]) -> None:
            for fn in fns:
                fn(response, problems)
        return check

    def body_is(**expected: Any) -> Callable[[requests.Response, list[str]], None]:
        def check(response: requests.Response, problems: list[str]) -> None:
            body = response.json()
            for key, value in expected.items():
                if body.get(key) != value:
                    problems.append(f"body {key} = {c.redact(repr(body.get(key)))}, expected {c.redact(repr(value))}")
        return check

    def header_is(name: str, value: str) -> Callable[[requests.Response, list[str]], None]:
        def check(response: requests.Response, problems: list[str]) -> None:
            if response.headers.get(name) != value:
                problems.append(f"header {name} = {c.redact(repr(response.headers.get(name)))}, expected {c.redact(repr(value))}")
        return check

    # ---- health (no key)
    c.call("liveness", "GET", "/healthz", expect=200, check=body_is(status="ok"))
    c.call("readiness", "GET", "/readyz", expect=200, check=body_is(status="ready"))
    c.call("liveness with a key", "GET", "/healthz", role="admin", expect=200)
    ids: list[str] = []

    def request_id_is_the_servers(response: requests.Response, problems: list[str]) -> None:
        ids.append(response.headers.get("X-Request-Id", ""))
        if ids[-1] == "ffffffff-ffffffffffffffff":
            problems.append("the server echoed the client's X-Request-Id")
        if len(ids) == 2 and ids[0] == ids[1]:
            problems.append("two requests got the same X-Request-Id")

    for _ in range(2):
        c.call("liveness, client sends X-Request-Id", "GET", "/healthz", headers={"X-Request-Id": "ffffffff-ffffffffffffffff"},
               expect=200, check=request_id_is_the_servers)

    # ---- create (app)
    s1 = c.create("create (app)", alice, data={"role": "editor", "n": 1}, ip="203.0.113.7", user_agent="Mozilla/5.0")
    s2 = c.create("create (admin), all optional fields", alice, role="admin", data={}, idle_timeout=60,
                  absolute_timeout=120, ip="", user_agent="")
    s3 = c.create("create, unicode user id", bob)
    c.call("create, reader key", "POST", "/v1/sessions", role="reader", json_body={"user_id": alice}, expect=403,
           code="forbidden")
    c.call("create, no key", "POST", "/v1/sessions", json_body={"user_id": alice}, expect=401, code="invalid_api_key")
    c.call("create, unknown key", "POST", "/v1/sessions", headers={"Authorization": "Bearer " + "z" * 32},
           json_body={"user_id": alice}, expect=401, code="invalid_api_key")
    c.call("create, Basic scheme", "POST", "/v1/sessions", headers={"Authorization": "Basic dXNlcjpwYXNz"},
           json_body={"user_id": alice}, expect=401, code="invalid_api_key")
    c.call("create, lower-case scheme", "POST", "/v1/sessions",
           headers={"Authorization": "bearer " + c.keys["app"]}, json_body={"user_id": alice}, expect=201)
    for step, payload in [
        ("create, malformed JSON", b'{"user_id":'),
        ("create, invalid UTF-8", b'{"user_id":"\xff\xfe"}'),
        ("create, not an object", b'["alice"]'),
        ("create, empty body", b""),
    ]:
        c.call(step, "POST", "/v1/sessions", role="app", body=payload, content_type="application/json", expect=400,
               code="invalid_request")
    for step, payload in [
        ("create, missing user_id", {"data": {}}),
        ("create, unknown field", {"user_id": alice, "usr_id": "x"}),
        ("create, empty user_id", {"user_id": ""}),
        ("create, user_id too long", {"user_id": "u" * 257}),
        ("create, control character in user_id", {"user_id": "a\u0001b"}),
        ("create, user_id ending in white space", {"user_id": "alice "}),
        ("create, user_id beginning with a no-break space", {"user_id": "\u00a0alice"}),
        ("create, data not an object", {"user_id": alice, "data": [1]}),
        ("create, idle_timeout 0", {"user_id": alice, "idle_timeout": 0}),
        ("create, idle_timeout over the configured one", {"user_id": alice, "idle_timeout": c.idle_timeout + 1}),
        ("create, absolute_timeout a string", {"user_id": alice, "absolute_timeout": "60"}),
        ("create, ip too long", {"user_id": alice, "ip": "1" * 65}),
        ("create, user_agent with a control character", {"user_id": alice, "user_agent": "a\nb"}),
    ]:
        c.call(step, "POST", "/v1/sessions", role="app", json_body=payload, expect=400, code="invalid_request")
    c.call("create, unknown query parameter", "POST", "/v1/sessions", role="app", query={"x": "1"},
           json_body={"user_id": alice}, expect=400, code="invalid_request")
    c.call("create, data over SESSIOND_MAX_DATA_BYTES", "POST", "/v1/sessions", role="app",
           json_body={"user_id": alice, "data": {"a": "x" * c.max_data_bytes}}, expect=413, code="payload_too_large")
    cap = 4 * c.max_data_bytes + 8192
    c.call("create, body over the request cap", "POST", "/v1/sessions", role="app",
           body=b'{"user_id":"a","data":{"a":"' + b"x" * cap + b'"}}', content_type="application/json",
           expect=413, code="payload_too_large")

    c.call("create, chunked body over the request cap", "POST", "/v1/sessions", role="app",
           body=chunked(b'{"user_id":"a","data":{"a":"' + b"x" * cap + b'"}}'), content_type="application/json",
           expect=413, code="payload_too_large")
    c.call("create, chunked body", "POST", "/v1/sessions", role="app", body=chunked(b'{"user_id":"chunked"}'),
           content_type="application/json", expect=201)

    t1, h1 = s1["token"], s1["handle"]
    t2, h2 = s2["token"], s2["handle"]
    t3, h3 = s3["token"], s3["handle"]

    # ---- lookup (reader)
    for role in ("reader", "app", "admin"):
        c.call(f"lookup ({role})", "GET", "/v1/session", role=role, headers={"X-Session-Token": t1}, expect=200,
               check=checks(body_is(handle=h1, user_id=alice, version=1), header_is("X-Session-Handle", h1),
                            header_is("X-Session-User-Id", alice), header_is("ETag", '"1"')))
    c.call("lookup, touch=false", "GET", "/v1/session", role="reader", query={"touch": "false"},
           headers={"X-Session-Token": t1}, expect=200)
    c.call("lookup, touch=true", "GET", "/v1/session", role="reader", query={"touch": "true"},
           headers={"X-Session-Token": t1}, expect=200)
    c.call("lookup by cookie", "GET", "/v1/session", role="reader", headers={"Cookie": f"__Host-session={t2}"},
           expect=200, check=body_is(handle=h2))
    c.call("lookup by quoted cookie", "GET", "/v1/session", role="reader",
           headers={"Cookie": f'other=1; __Host-session="{t2}"'}, expect=200, check=body_is(handle=h2))
    c.call("lookup, unicode user id", "GET", "/v1/session", role="reader", headers={"X-Session-Token": t3},
           expect=200, check=checks(body_is(user_id=bob),
                                    header_is("X-Session-User-Id", bob.encode().decode("latin-1"))))
    c.call("lookup, touch=maybe", "GET", "/v1/session", role="reader", query={"touch": "maybe"},
           headers={"X-Session-Token": t1}, expect=400, code="invalid_request")
    c.call("lookup, unknown query parameter", "GET", "/v1/session", role="reader", query={"x": "1"},
           headers={"X-Session-Token": t1}, expect=400, code="invalid_request")
    c.call("lookup, no token", "GET", "/v1/session", role="reader", expect=401, code="invalid_session")
    c.call("lookup, token too short", "GET", "/v1/session", role="reader", headers={"X-Session-Token": t1[:-1]},
           expect=401, code="invalid_session")
    c.call("lookup, token with a bad character", "GET", "/v1/session", role="reader",
           headers={"X-Session-Token": "*" + t1[1:]}, expect=401, code="invalid_session")
    c.call("lookup, unknown token", "GET", "/v1/session", role="reader",
           headers={"X-Session-Token": "A" * 43}, expect=401, code="invalid_session")
    c.call("lookup, no key", "GET", "/v1/session", headers={"X-Session-Token": t1}, expect=401,
           code="invalid_api_key")
    c.call("lookup, unknown key", "GET", "/v1/session", headers={"X-Session-Token": t1,
           "Authorization": "Bearer " + "y" * 40}, expect=401, code="invalid_api_key")

    # ---- forward auth (reader): the lookup under /v1/auth/, whatever the path, query and method
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        c.call(f"forward auth ({method})", method, "/v1/auth/orders", role="reader", query={"touch": "maybe"},
               headers={"Cookie": f"__Host-session={t2}"}, expect=200,
               check=checks(body_is(handle=h2), header_is("X-Session-Handle", h2)))
    c.call("forward auth, deep path", "GET", "/v1/auth/app/orders/7", role="reader", operation="forwardAuthGet",
           headers={"Cookie": f"__Host-session={t2}"}, expect=200, check=body_is(handle=h2))
    c.call("forward auth, unknown token", "GET", "/v1/auth/app", role="reader",
           headers={"Cookie": "__Host-session=" + "A" * 43}, expect=401, code="invalid_session")

    # ---- patch (app)
    c.call("patch (app)", "PATCH", "/v1/session", role="app", headers={"X-Session-Token": t1},
           json_body={"cart": {"items": 3}, "role": None}, content_type="application/merge-patch+json", expect=200,
           check=checks(body_is(version=2, data={"cart": {"items": 3}, "n": 1}), header_is("ETag", '"2"'),
                        header_is("X-Session-Handle", h1)))
    c.call("patch (admin), If-Match current", "PATCH", "/v1/session", role="admin",
           headers={"X-Session-Token": t1, "If-Match": '"2"'}, json_body={"n": 2}, expect=200,
           check=body_is(version=3))
    c.call("patch, If-Match *", "PATCH", "/v1/session", role="app", headers={"X-Session-Token": t1, "If-Match": "*"},
           json_body={}, content_type="application/json", expect=200, check=body_is(version=4))
    c.call("patch by cookie", "PATCH", "/v1/session", role="app", headers={"Cookie": f"__Host-session={t1}"},
           json_body={"via": "cookie"}, expect=200, check=body_is(version=5))
    c.call("patch, If-Match stale", "PATCH", "/v1/session", role="app", headers={"X-Session-Token": t1, "If-Match": '"1"'},
           json_body={"n": 9}, expect=412, code="precondition_failed", check=header_is("ETag", '"5"'))
    c.call("patch, If-Match weak (never matches)", "PATCH", "/v1/session", role="app",
           headers={"X-Session-Token": t1, "If-Match": 'W/"5"'}, json_body={"n": 9}, expect=412,
           code="precondition_failed", check=header_is("ETag", '"5"'))
    for step, if_match in [("patch, If-Match unquoted", "5"), ("patch, If-Match list", '"4", "5"'),
                           ("patch, If-Match empty quotes", '""')]:
        c.call(step, "PATCH", "/v1/session", role="app", headers={"X-Session-Token": t1, "If-Match": if_match},
               json_body={"n": 9}, expect=400, code="invalid_request")
    for step, payload in [("patch, not an object", b"[1]"), ("patch, malformed JSON", b"{"),
                          ("patch, invalid UTF-8", b'{"a":"\xc3"}'), ("patch, deep nesting", b"[" * 10000 + b"]" * 10000)]:
        c.call(step, "PATCH", "/v1/session", role="app", headers={"X-Session-Token": t1}, body=payload,
               content_type="application/merge-patch+json", expect=400, code="invalid_request")
    c.call("patch, deep nesting in an object", "PATCH", "/v1/session", role="app", headers={"X-Session-Token": t1},
           body=b'{"a":' + b'{"a":' * 2000 + b"1" + b"}" * 2001, content_type="application/merge-patch+json",
           expect=400, code="invalid_request")
    c.call("patch, unknown query parameter", "PATCH", "/v1/session", role="app", query={"x": "1"},
           headers={"X-Session-Token": t1}, json_body={}, expect=400, code="invalid_request")
    c.call("patch, result over SESSIOND_MAX_DATA_BYTES", "PATCH", "/v1/session", role="app",
           headers={"X-Session-Token": t1}, json_body={"big": "x" * (c.max_data_bytes - 10)}, expect=413,
           code="payload_too_large")
    c.call("patch, body over the request cap", "PATCH", "/v1/session", role="app", headers={"X-Session-Token": t1},
           body=b'{"a":"' + b"x" * cap + b'"}', content_type="application/json", expect=413, code="payload_too_large")
    c.call("patch, chunked body over the request cap", "PATCH", "/v1/session", role="app",
           headers={"X-Session-Token": t1}, body=chunked(b'{"a":"' + b"x" * cap + b'"}'),
           content_type="application/merge-patch+json", expect=413, code="payload_too_large")
    c.call("patch, reader key", "PATCH", "/v1/session", role="reader", headers={"X-Session-Token": t1},
           json_body={}, expect=403, code="forbidden")
    c.call("patch, no key", "PATCH", "/v1/session", headers={"X-Session-Token": t1}, json_body={}, expect=401,
           code="invalid_api_key")
    c.call("patch, no token", "PATCH", "/v1/session", role="app", json_body={}, expect=401, code="invalid_session")
    c.call("lookup after patches", "GET", "/v1/session", role="reader", query={"touch": "false"},
           headers={"X-Session-Token": t1}, expect=200,
           check=checks(body_is(version=5, data={"cart": {"items": 3}, "n": 2, "via": "cookie"}), header_is("ETag", '"5"')))

    # ---- rotate (app)
    rotated: dict[str, Any] = {}

    def keep_rotated(response: requests.Response, problems: list[str]) -> None:
        rotated.update(response.json())
        if rotated.get("handle") == h1 or rotated.get("token") == t1:
            problems.append("rotate kept the old token or handle")
        if rotated.get("version") != 5 or rotated.get("created_at") != s1["created_at"]:
            problems.append("rotate did not carry version and created_at over")

    c.call("rotate (app)", "POST", "/v1/session/rotate", role="app", headers={"X-Session-Token": t1}, expect=200,
           check=keep_rotated)
    c.call("lookup, old token after rotate", "GET", "/v1/session", role="reader", headers={"X-Session-Token": t1},
           expect=401, code="invalid_session")
    t1b, h1b = rotated.get("token", "A" * 43), rotated.get("handle", "AAAAAAAAAAAAAAAA")
    c.call("lookup, new token after rotate", "GET", "/v1/session", role="reader", headers={"X-Session-Token": t1b},
           expect=200, check=checks(body_is(handle=h1b), header_is("X-Session-Handle", h1b)))
    c.call("rotate (admin) by cookie", "POST", "/v1/session/rotate", role="admin",
           headers={"Cookie": f"__Host-session={t2}"}, expect=200, check=lambda r, p: rotated.update(r2=r.json()))
    t2 = rotated.get("r2", {}).get("token", t2)
    h2 = rotated.get("r2", {}).get("handle", h2)
    c.call("rotate, old token", "POST", "/v1/session/rotate", role="app", headers={"X-Session-Token": t1},
           expect=401, code="invalid_session")
    c.call("rotate, unknown query parameter", "POST", "/v1/session/rotate", role="app", query={"x": "1"},
           headers={"X-Session-Token": t1b}, expect=400, code="invalid_request")
    c.call("rotate, reader key", "POST", "/v1/session/rotate", role="reader", headers={"X-Session-Token": t1b},
           expect=403, code="forbidden")
    c.call("rotate, no key", "POST", "/v1/session/rotate", headers={"X-Session-Token": t1b}, expect=401,
           code="invalid_api_key")

    # ---- list (admin)
    listed: dict[str, Any] = {}

    def keep_list(response: requests.Response, problems: list[str]) -> None:
        body = response.json()
        listed.update(body)
        handles = [s["handle"] for s in body["sessions"]]
        if body["user_id"] != alice or body["total"] < 3 or len(handles) != 1 or body["next_cursor"] is None:
            problems.append(f"first page of one: total {body['total']}, {len(handles)} sessions, "
                            f"next_cursor {'set' if body['next_cursor'] else 'null'}")

    c.call("list, limit=1 (admin)", "GET", user_path(alice), role="admin", query={"limit": "1"}, expect=200,
           check=keep_list)
    cursor = listed.get("next_cursor") or "1.AAAAAAAAAAAAAAAA"
    c.call("list, next page by cursor", "GET", user_path(alice), role="admin", query={"limit": "1", "cursor": cursor},
           expect=200)
    c.call("list, all", "GET", user_path(alice), role="admin", expect=200,
           check=lambda r, p: None if {h1b, h2} <= {s["handle"] for s in r.json()["sessions"]} else p.append("list misses a session"))
    c.call("list, unicode user id", "GET", user_path(bob), role="admin", expect=200,
           check=checks(body_is(user_id=bob, total=1)))
    c.call("list, unknown user", "GET", user_path(f"nobody-{run}"), role="admin", expect=200,
           check=body_is(total=0, sessions=[], next_cursor=None))
    for step, query in [("list, limit=0", {"limit": "0"}), ("list, limit=1001", {"limit": "1001"}),
                        ("list, limit=abc", {"limit": "abc"}), ("list, malformed cursor", {"cursor": "nope"}),
                        ("list, unknown query parameter", {"x": "1"}), ("list, repeated limit", "limit=1&limit=2")]:
        c.call(step, "GET", user_path(alice), role="admin", query=query, expect=400, code="invalid_request")
    c.call("list, user id too long", "GET", user_path("u" * 257), role="admin", expect=400, code="invalid_request")
    c.call("list, control character in user id", "GET", "/v1/users/a%01b/sessions", role="admin", expect=400,
           code="invalid_request")
    c.call("list, user id with outer white space", "GET", user_path(" " + alice), role="admin", expect=400,
           code="invalid_request")
    c.call("list, app key", "GET", user_path(alice), role="app", expect=403, code="forbidden")
    c.call("list, reader key", "GET", user_path(alice), role="reader", expect=403, code="forbidden")
    c.call("list, no key", "GET", user_path(alice), expect=401, code="invalid_api_key")

    # ---- read by handle (admin)
    c.call("read by handle (admin)", "GET", f"/v1/sessions/{h1b}", role="admin", expect=200,
           check=checks(body_is(handle=h1b, user_id=alice), header_is("ETag", '"5"'), header_is("X-Session-Handle", h1b)))
    c.call("read by handle, unknown", "GET", "/v1/sessions/AAAAAAAAAAAAAAAA", role="admin", expect=404, code="not_found")
    c.call("read by handle, malformed", "GET", "/v1/sessions/not-a-handle", role="admin", expect=404, code="not_found")
    c.call("read by handle, old handle after rotate", "GET", f"/v1/sessions/{h1}", role="admin", expect=404,
           code="not_found")
    c.call("read by handle, unknown query parameter", "GET", f"/v1/sessions/{h1b}", role="admin", query={"x": "1"},
           expect=400, code="invalid_request")
    c.call("read by handle, app key", "GET", f"/v1/sessions/{h1b}", role="app", expect=403, code="forbidden")
    c.call("read by handle, no key", "GET", f"/v1/sessions/{h1b}", expect=401, code="invalid_api_key")

    # ---- revoke by handle (admin)
    s4 = c.create("create a session to revoke by handle", alice)
    c.call("revoke by handle, app key", "DELETE", f"/v1/sessions/{s4['handle']}", role="app", expect=403,
           code="forbidden")
    c.call("revoke by handle, no key", "DELETE", f"/v1/sessions/{s4['handle']}", expect=401, code="invalid_api_key")
    c.call("revoke by handle, unknown query parameter", "DELETE", f"/v1/sessions/{s4['handle']}", role="admin",
           query={"x": "1"}, expect=400, code="invalid_request")
    c.call("revoke by handle (admin)", "DELETE", f"/v1/sessions/{s4['handle']}", role="admin", expect=200,
           check=checks(body_is(revoked=True), header_is("X-Session-Handle", s4["handle"])))
    c.call("revoke by handle, again", "DELETE", f"/v1/sessions/{s4['handle']}", role="admin", expect=404,
           code="not_found")
    c.call("revoke by handle, malformed", "DELETE", "/v1/sessions/x", role="admin", expect=404, code="not_found")
    c.call("lookup, token revoked by handle", "GET", "/v1/session", role="reader",
           headers={"X-Session-Token": s4["token"]}, expect=401, code="invalid_session")

    # ---- revoke by token (app)
    s5 = c.create("create a session to log out", alice)
    c.call("logout, reader key", "DELETE", "/v1/session", role="reader", headers={"X-Session-Token": s5["token"]},
           expect=403, code="forbidden")
    c.call("logout, unknown query parameter", "DELETE", "/v1/session", role="app", query={"x": "1"},
           headers={"X-Session-Token": s5["token"]}, expect=400, code="invalid_request")
    c.call("logout (app)", "DELETE", "/v1/session", role="app", headers={"X-Session-Token": s5["token"]}, expect=200,
           check=checks(body_is(revoked=True), header_is("X-Session-Handle", s5["handle"])))
    c.call("logout, again", "DELETE", "/v1/session", role="admin", headers={"Cookie": f"__Host-session={s5['token']}"},
           expect=200, check=checks(body_is(revoked=False), header_is("X-Session-Handle", s5["handle"])))
    c.call("logout, no token", "DELETE", "/v1/session", role="app", expect=401, code="invalid_session")
    c.call("logout, malformed token", "DELETE", "/v1/session", role="app", headers={"X-Session-Token": "short"},
           expect=401, code="invalid_session")
    c.call("logout, no key", "DELETE", "/v1/session", headers={"X-Session-Token": s5["token"]}, expect=401,
           code="invalid_api_key")
    c.call("lookup after logout", "GET", "/v1/session", role="reader", headers={"X-Session-Token": s5["token"]},
           expect=401, code="invalid_session")

    # ---- force-logout (admin)
    c.call("force-logout, malformed except", "DELETE", user_path(alice), role="admin", query={"except": "bad"},
           expect=400, code="invalid_request")
    c.call("force-logout, unknown query parameter", "DELETE", user_path(alice), role="admin", query={"x": "1"},
           expect=400, code="invalid_request")
    c.call("force-logout, user id too long", "DELETE", user_path("u" * 257), role="admin", expect=400,
           code="invalid_request")
    c.call("force-logout, app key", "DELETE", user_path(alice), role="app", expect=403, code="forbidden")
    c.call("force-logout, no key", "DELETE", user_path(alice), expect=401, code="invalid_api_key")
    c.call("force-logout except one (admin)", "DELETE", user_path(alice), role="admin", query={"except": h2},
           expect=200, check=lambda r, p: None if r.json()["revoked"] >= 2 else p.append(f"revoked {r.json()['revoked']}"))
    c.call("lookup, force-logged-out session", "GET", "/v1/session", role="reader", headers={"X-Session-Token": t1b},
           expect=401, code="invalid_session")
    c.call("lookup, the session kept by except", "GET", "/v1/session", role="reader", headers={"X-Session-Token": t2},
           expect=200)
    c.call("force-logout the rest", "DELETE", user_path(alice), role="admin", expect=200, check=body_is(revoked=1))
    c.call("force-logout, unknown user", "DELETE", user_path(f"nobody-{run}"), role="admin", expect=200,
           check=body_is(revoked=0))
    c.call("force-logout, unicode user id", "DELETE", user_path(bob), role="admin", expect=200, check=body_is(revoked=1))

    # ---- unknown routes and methods
    c.call("unknown route", "GET", "/v1/nope", role="admin", expect=404, code="not_found",
           operation="readSessionByHandle")
    c.call("unknown route, no key", "GET", "/nope", expect=404, code="not_found", operation="readSessionByHandle")
    for path, methods in [(p, {m for m in METHODS if m in item}) for p, item in c.document["paths"].items()]:
        concrete = path.replace("{user_id}", "alice").replace("{handle}", "AAAAAAAAAAAAAAAA")
        for method in ("put", "post", "patch", "delete", "get", "head", "options", "trace"):
            if method in methods:
                continue
            c.call(f"{method.upper()} {path}", method.upper(), concrete, role="admin", expect=405,
                   code=None if method == "head" else "method_not_allowed")

    # ---- operations without a scenario above (added to openapi.yaml later): the generic probes
    # (no key, each role below the one needed, the role needed), so every operation is driven.
    roles = ["reader", "app", "admin"]
    for op_id, (path, method) in c.operations.items():
        if op_id in SCENARIO_OPERATIONS:
            continue
        operation = c.document["paths"][path][method]
        declared = sorted(int(x) for x in operation["responses"] if x.isdigit())
        success = next((x for x in declared if 200 <= x < 300), None)
        needs_input = (operation.get("requestBody") or {}).get("required") or any(
            c.resolve(p).get("required") for p in operation.get("parameters", []) + c.document["paths"][path].get("parameters", []))
        concrete = re.sub(r"\{[^}]+\}", "AAAAAAAAAAAAAAAA", path)
        secured = operation.get("security", c.document.get("security")) not in ([], None)
        role = operation.get("x-required-role")
        c.generic_operations.add(op_id)
        if secured and 401 in declared:
            c.call(f"{op_id}, no key", method.upper(), concrete, expect=401, code="invalid_api_key")
        if role in roles and 403 in declared:
            for lower in roles[: roles.index(role)]:
                c.call(f"{op_id}, {lower} key", method.upper(), concrete, role=lower, expect=403, code="forbidden")
        if success and not needs_input:
            c.call(f"{op_id} ({role or 'no key'})", method.upper(), concrete, role=role if role in roles else None,
                   expect=success)

    # ---- Redis away: every store operation answers 503 quickly
    if pause_redis:
        s6 = c.create("create a session for the outage", alice)
        # Commands sent during the pause run when it ends (the revocations among them too), so the
        # lookup after the pause uses a session that none of them touches.
        s7 = c.create("create a session for after the outage", bob)
        outage = [
            ("readiness, Redis paused", "GET", "/readyz", None, {}, None),
            ("create, Redis paused", "POST", "/v1/sessions", "app", {}, {"user_id": alice}),
            ("lookup, Redis paused", "GET", "/v1/session", "reader", {"X-Session-Token": s6["token"]}, None),
            ("patch, Redis paused", "PATCH", "/v1/session", "app", {"X-Session-Token": s6["token"]}, {"a": 1}),
            ("rotate, Redis paused", "POST", "/v1/session/rotate", "app", {"X-Session-Token": s6["token"]}, None),
            ("logout, Redis paused", "DELETE", "/v1/session", "app", {"X-Session-Token": s6["token"]}, None),
            ("list, Redis paused", "GET", user_path(alice), "admin", {}, None),
            ("force-logout, Redis paused", "DELETE", user_path(alice), "admin", {}, None),
            ("read by handle, Redis paused", "GET", f"/v1/sessions/{s6['handle']}", "admin", {}, None),
            ("revoke by handle, Redis paused", "DELETE", f"/v1/sessions/{s6['handle']}", "admin", {}, None),
        ]
        # One client per request, made before the pause (they share the parsed document).
        workers = []
        for _ in outage:
            worker = Contract(c.base_url, c.keys, c.spec_path, c.max_data_bytes, c.idle_timeout, c.verbose)
            worker.secrets = c.secrets
            workers.append(worker)
        pause_ms = 6000
        redis_command(pause_redis, "CLIENT", "PAUSE", str(pause_ms), "ALL")
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(len(outage)) as pool:
            futures = []
            for worker, (step, method, path, role, headers, body) in zip(workers, outage):
                futures.append((worker, pool.submit(worker.call, step, method, path, role=role, headers=headers,
                                                    json_body=body, expect=503, code="store_unavailable")))
            for worker, future in futures:
                future.result()
                c.failures += worker.failures
                c.requests_sent += worker.requests_sent
                for key, count in worker.exercised.items():
                    c.exercised[key] = c.exercised.get(key, 0) + count
        elapsed = time.monotonic() - started
        if elapsed > pause_ms / 1000 - 1:
            c.failures.append(Failure("503 answers while Redis is paused", [
                f"the 503 answers took {elapsed:.1f} s; the bound is 1 s per Redis call"], "(10 requests at once)", ""))
        time.sleep(max(0.0, pause_ms / 1000 - elapsed) + 0.5)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if requests.get(c.base_url + "/readyz", timeout=5).status_code == 200:
                break
            time.sleep(0.2)
        c.call("readiness after the pause", "GET", "/readyz", expect=200)
        c.call("lookup after the pause", "GET", "/v1/session", role="reader", headers={"X-Session-Token": s7["token"]},
               expect=200, check=body_is(handle=s7["handle"]))

        # ---- Redis full (maxmemory 1 byte, noeviction): writes answer 507, reads still work
        s8 = c.create("create a session before Redis is full", alice)
        redis_command(pause_redis, "CONFIG", "SET", "maxmemory-policy", "noeviction")
        redis_command(pause_redis, "CONFIG", "SET", "maxmemory", "1")
        try:
            c.call("create, Redis full", "POST", "/v1/sessions", role="app", json_body={"user_id": alice},
                   expect=507, code="store_full")
            c.call("patch, Redis full", "PATCH", "/v1/session", role="app", headers={"X-Session-Token": s8["token"]},
                   json_body={"a": 1}, expect=507, code="store_full")
            c.call("rotate, Redis full", "POST", "/v1/session/rotate", role="app", headers={"X-Session-Token": s8["token"]},
                   expect=507, code="store_full")
            c.call("lookup, Redis full", "GET", "/v1/session", role="reader", headers={"X-Session-Token": s8["token"]},
                   expect=200, check=body_is(handle=s8["handle"]))
            c.call("logout, Redis full", "DELETE", "/v1/session", role="app", headers={"X-Session-Token": s8["token"]},
                   expect=200, check=body_is(revoked=True))
        finally:
            redis_command(pause_redis, "CONFIG", "SET", "maxmemory", "0")


def redis_command(address: str, *command: str) -> None:
    """Sends one command to the Redis at host:port (one of the script's own) and requires +OK."""
    host, _, port = address.rpartition(":")
    try:
        reply = harness.redis_command(int(port), *command, host=host or "127.0.0.1")
    except RuntimeError as error:
        reply = str(error)
    if reply != "+OK":
        raise SystemExit(f"{' '.join(command[:2])} failed: {reply!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default=str(REPO_ROOT / "openapi.yaml"))
    parser.add_argument("--pause-redis", metavar="HOST:PORT",
                        help="also check the 503 answers by pausing this Redis (CLIENT PAUSE); only a Redis of your own")
    parser.add_argument("--max-data-bytes", type=int, default=16384, help="the server's SESSIOND_MAX_DATA_BYTES")
    parser.add_argument("--idle-timeout", type=int, default=1800, help="the server's SESSIOND_IDLE_TIMEOUT")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every step")
    args = parser.parse_args()

    missing = [v for v in ("SESSIOND_URL", "SESSIOND_READER_KEY", "SESSIOND_APP_KEY", "SESSIOND_ADMIN_KEY")
               if not os.environ.get(v)]
    if missing:
        print(f"validate_responses: set {', '.join(missing)}", file=sys.stderr)
        return 2
    contract = Contract(
        base_url=os.environ["SESSIOND_URL"].rstrip("/"),
        keys={"reader": os.environ["SESSIOND_READER_KEY"], "app": os.environ["SESSIOND_APP_KEY"],
              "admin": os.environ["SESSIOND_ADMIN_KEY"]},
        spec_path=Path(args.spec),
        max_data_bytes=args.max_data_bytes,
        idle_timeout=args.idle_timeout,
        verbose=args.verbose,
    )
    started = time.monotonic()
    run_scenarios(contract, args.pause_redis)
    elapsed = time.monotonic() - started

    # Every (operation, declared status) pair must have been seen.
    not_seen = []
    for op_id, (path, method) in sorted(contract.operations.items(), key=lambda kv: kv[1]):
        declared = sorted(int(s) for s in contract.document["paths"][path][method]["responses"] if s.isdigit())
        seen = sorted({status for (op, status) in contract.exercised if op == op_id})
        print(f"  {method.upper():6} {path:32} declared {declared}  seen {seen}")
        for status in declared:
            if status in seen or (status in (503, 507) and not args.pause_redis):
                continue
            if op_id in contract.generic_operations and status not in (200, 201, 204, 401, 403, 405):
                print(f"  warning: {op_id} {status} is not exercised (no scenario for {op_id} in validate_responses.py)")
                continue
            not_seen.append(f"{op_id} {status}")
    if not_seen:
        contract.failures.append(Failure("coverage", [f"declared but never exercised: {', '.join(not_seen)}"], "", ""))

    for failure in contract.failures:
        print(f"\n=== FAIL: {failure.step}", file=sys.stderr)
        for problem in failure.problems:
            print(f"  - {problem}", file=sys.stderr)
        if failure.request:
            print("--- request\n" + failure.request, file=sys.stderr)
        if failure.response:
            print("--- response\n" + failure.response, file=sys.stderr)
    print(f"\nvalidate_responses: {contract.requests_sent} requests over {len(contract.operations)} operations "
          f"in {elapsed:.1f} s; {len(contract.failures)} failure(s)"
          + ("" if args.pause_redis else " (503 answers not exercised: no --pause-redis)"))
    return 1 if contract.failures else 0


if __name__ == "__main__":
    sys.exit(main())
