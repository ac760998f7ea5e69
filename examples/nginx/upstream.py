#!/usr/bin/env python3
"""A stand-in for the protected app: answers every request with the X-Session-* headers it got.

    python3 upstream.py [--port N] [--port-file FILE] [--record FILE]

It listens on 127.0.0.1 (port 0, the default, picks a free one; --port-file receives the port
once it listens). Every answer is JSON:
{"method", "path", "x_session_user_id": [...], "x_session_handle": [...]}, each header as the
list of its values (a header sent twice shows twice). Values are read as UTF-8, the way sessiond
sends user ids. --record appends one JSON line per request with all the headers the app got,
so a test can check that nothing secret reached it. Python standard library only.
"""

import argparse
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def as_utf8(value):
    # http.server decodes header bytes as ISO-8859-1; undo that to see the UTF-8 text.
    try:
        return value.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    record = None

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        headers = [[name, as_utf8(value)] for name, value in self.headers.items()]
        if self.record:
            with open(self.record, "a", encoding="utf-8") as out:
                out.write(json.dumps({"method": self.command, "path": self.path,
                                      "headers": headers}) + "\n")
        body = json.dumps({
            "method": self.command,
            "path": self.path,
            "x_session_user_id": [v for n, v in headers if n.lower() == "x-session-user-id"],
            "x_session_handle": [v for n, v in headers if n.lower() == "x-session-handle"],
        }, ensure_ascii=False).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--record")
    args = parser.parse_args()
    Handler.record = args.record
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="ascii") as out:
            out.write(f"{server.server_address[1]}\n")
        os.replace(tmp, args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
