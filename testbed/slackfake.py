"""A small fake of the Slack Web API, for tests and `make dev`.

    python testbed/slackfake.py --port N     # N may be 0; prints "READY port=<chosen>"

Records every request and answers like Slack:

    POST /api/chat.postMessage                   {"ok":true,"channel":..,"ts":"<increasing>"}
                                                 (to a user id U…/W…: the direct message's
                                                 own conversation, "D…", as Slack answers)
    POST /api/chat.update                        {"ok":true}; channel_not_found for a user id
                                                 (Slack updates a direct message by its D…)
    POST /api/chat.postEphemeral|views.open|views.update|views.publish   {"ok":true}
    GET/POST /api/users.info?user=U…             the user from the table, or user_not_found
    GET/POST /api/users.lookupByEmail?email=…    the user whose profile has that e-mail
                                                 (any case), or users_not_found
    POST /response/<anything>                    200 "ok" (a response_url)

/api/* needs "Authorization: Bearer xoxb-…" (else {"ok":false,"error":"not_authed"}).

Test endpoints:

    POST   /_testbed/users                  {"U…": {user object}, …}  (merged into the table)
    GET    /_testbed/requests               every recorded request
    DELETE /_testbed/requests               forget them
    POST   /_testbed/fail-response-urls     {"fail": true|false} (no body: toggle) → 500s
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOST = "127.0.0.1"
OK_METHODS = {"chat.update", "chat.postEphemeral", "views.open", "views.update", "views.publish"}


def is_user_id(channel: Any) -> bool:
    return isinstance(channel, str) and channel[:1] in ("U", "W")


def conversation_of(channel: Any) -> Any:
    """Where chat.postMessage puts a message: a user id means that user's direct messages."""
    return "D" + channel[1:] if is_user_id(channel) else channel


class SlackState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.fail_response_urls = False
        # Slack message timestamps are "<epoch seconds>.<6 digits>" and unique per channel.
        self.ts_counter = itertools.count(1)

    def next_ts(self) -> str:
        return f"{int(time.time())}.{next(self.ts_counter):06d}"


class Handler(BaseHTTPRequestHandler):
    server: "SlackFakeServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.verbose:
            super().log_message(format, *args)

    # ---------------------------------------------------------------- helpers

    def reply(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_request(self) -> dict[str, Any]:
        """Parse the request and append it to the record."""
        url = urllib.parse.urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        body: Any
        if ctype == "application/json":
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = raw.decode("utf-8", "replace")
        elif ctype == "application/x-www-form-urlencoded":
            body = dict(urllib.parse.parse_qsl(raw.decode("utf-8", "replace")))
        else:
            body = raw.decode("utf-8", "replace")
        record = {
            "at": time.time(),
            "method": self.command,
            "path": url.path,
            "query": dict(urllib.parse.parse_qsl(url.query)),
            "headers": dict(self.headers.items()),
            "body": body,
        }
        return record

    # ---------------------------------------------------------------- routes

    def do_GET(self) -> None:
        self.route()

    def do_POST(self) -> None:
        self.route()

    def do_DELETE(self) -> None:
        self.route()

    def route(self) -> None:
        req = self.read_request()
        path = req["path"]
        state = self.server.state
        if path.startswith("/_testbed/"):
            return self.testbed(req)
        with state.lock:
            state.requests.append(req)

        if path.startswith("/response/") and self.command == "POST":
            if state.fail_response_urls:
                return self.reply(500, "internal_error", "text/plain")
            return self.reply(200, "ok", "text/plain")

        if not path.startswith("/api/"):
            return self.reply(404, {"ok": False, "error": "unknown_path"})
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer xoxb-"):
            return self.reply(200, {"ok": False, "error": "not_authed"})

        method = path[len("/api/") :]
        args = dict(req["query"])
        if isinstance(req["body"], dict):
            args.update(req["body"])
        if method == "chat.postMessage" and self.command == "POST":
            channel = conversation_of(args.get("channel"))
            return self.reply(200, {"ok": True, "channel": channel, "ts": state.next_ts()})
        if method == "chat.update" and is_user_id(args.get("channel")):
            return self.reply(200, {"ok": False, "error": "channel_not_found"})
        if method in OK_METHODS and self.command == "POST":
            return self.reply(200, {"ok": True})
        if method == "users.info":
            with state.lock:
                user = state.users.get(str(args.get("user")))
            if user is None:
                return self.reply(200, {"ok": False, "error": "user_not_found"})
            return self.reply(200, {"ok": True, "user": user})
        if method == "users.lookupByEmail":
            email = str(args.get("email") or "").lower()
            with state.lock:
                found = [
                    u for u in state.users.values()
                    if email and str((u.get("profile") or {}).get("email") or "").lower() == email
                ]
            if not found:
                return self.reply(200, {"ok": False, "error": "users_not_found"})
            return self.reply(200, {"ok": True, "user": found[0]})
        return self.reply(200, {"ok": False, "error": "unknown_method"})

    def testbed(self, req: dict[str, Any]) -> None:
        state, path, method = self.server.state, req["path"], self.command
        if path == "/_testbed/requests" and method == "GET":
            with state.lock:
                return self.reply(200, list(state.requests))
        if path == "/_testbed/requests" and method == "DELETE":
            with state.lock:
                state.requests.clear()
            return self.reply(200, {"ok": True})
        if path == "/_testbed/users" and method == "POST":
            if not isinstance(req["body"], dict):
                return self.reply(400, {"ok": False, "error": "expected a JSON object"})
            with state.lock:
                state.users.update(req["body"])
            return self.reply(200, {"ok": True})
        if path == "/_testbed/fail-response-urls" and method == "POST":
            with state.lock:
                body = req["body"]
                if isinstance(body, dict) and "fail" in body:
                    state.fail_response_urls = bool(body["fail"])
                else:
                    state.fail_response_urls = not state.fail_response_urls
                return self.reply(200, {"ok": True, "fail": state.fail_response_urls})
        return self.reply(404, {"ok": False, "error": "unknown_testbed_path"})


class SlackFakeServer(ThreadingHTTPServer):
    """``with SlackFakeServer() as s: s.url`` serves in a background thread."""

    daemon_threads = True

    def __init__(self, port: int = 0, verbose: bool = False):
        super().__init__((HOST, port), Handler)
        self.state = SlackState()
        self.verbose = verbose
        self.port = self.server_address[1]
        self.url = f"http://{HOST}:{self.port}"
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "SlackFakeServer":
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
        self.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake Slack Web API")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args()
    server = SlackFakeServer(args.port, verbose=args.verbose)
    print(f"READY port={server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
