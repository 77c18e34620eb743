"""Small fakes of the PagerDuty REST API v2 and of Opsgenie's schedules API, for tests and `make dev`.

    python testbed/oncallfake.py --service pagerduty|opsgenie --token TOKEN --port N [--verbose]
                                                 # N may be 0; prints "READY port=<chosen>"

One process serves one service, at the paths and with the JSON shapes of the real API (the
base URL stands for https://api.pagerduty.com or https://api.opsgenie.com). Every API request
is recorded: method, path, query (repeated keys and `…[]` keys as lists), the Authorization,
From and Accept headers, and the JSON body.

PagerDuty (every API path needs "Authorization: Token token=<TOKEN>", else 401 code 2006):

    GET  /oncalls?schedule_ids[]=..&escalation_policy_ids[]=..&user_ids[]=..&include[]=users
                 &limit=25&offset=0&total=false&time_zone=..&earliest=..
                 {"oncalls":[…],"limit":L,"offset":O,"more":bool,"total":null}
                 One entry per (schedule, escalation level, user) as set by PUT /_testbed/oncall.
                 Each schedule S has the escalation policy "EP"+S. The filters that are given
                 must all match. include[]=users expands `user` (type "user", with email).
    GET  /incidents/{id}                         {"incident":{…}}, or 404 code 2100
    POST /incidents/{id}/notes                   {"note":{"content":..}} and "From: <email>"
                                                 → 201 {"note":{…}}; no From: 400 code 2001;
                                                 no content: 400 code 2001; unknown: 404

Opsgenie (every API path needs "Authorization: GenieKey <TOKEN>", else 401):

    GET  /v2/schedules/{identifier}/on-calls?scheduleIdentifierType=id|name&flat=true|false
                 flat=true:  {"data":{"_parent":{id,name,enabled},"onCallRecipients":[email,…]},…}
                 flat=false: {"data":{"_parent":…,"onCallParticipants":[{id,name,type:"user"}]},…}
                 The recipients are those PUT /_testbed/oncall set for level 1 (Opsgenie
                 schedules have no levels). Unknown schedule: 404.

Test endpoints (no auth):

    PUT    /_testbed/oncall          {"schedule_id":S,"emails":[…],"level":1,"name":..}
                                     replaces the list of S at that level ([] clears it);
                                     creates S if unknown (name: optional, default S)
    PUT    /_testbed/incidents       {"id":..,"status":"triggered","title":..}  (PagerDuty)
                                     creates or replaces an incident (its notes are kept)
    GET    /_testbed/incidents/{id}/notes                                  (PagerDuty)
    PUT    /_testbed/down            {"down":true|false} (no body: toggle); while down every
                                     API path answers 503
    GET    /_testbed/requests        every recorded API request
    DELETE /_testbed/requests        forget them

Control bodies are read as JSON whatever their Content-Type (so `curl -d '{…}'` works).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOST = "127.0.0.1"
SERVICES = ("pagerduty", "opsgenie")
PD_BASE = "https://api.pagerduty.com"
PD_WEB = "https://example.pagerduty.com"
PD_DEFAULT_LIMIT, PD_MAX_LIMIT = 25, 100
INCIDENT_STATUSES = ("triggered", "acknowledged", "resolved")
RECORDED_HEADERS = ("Authorization", "From", "Accept")
NO_FROM = 'You must specify a user\'s email address in the "From" header to perform this action'


def iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pd_id(seed: str, prefix: str = "P") -> str:
    """A stable PagerDuty-looking id ("P" + 6 upper-case letters/digits) for `seed`."""
    digest = base64.b32encode(hashlib.sha1(seed.encode()).digest()).decode()
    return prefix + digest[:6]


def og_id(seed: str) -> str:
    """A stable Opsgenie-looking id (a UUID) for `seed`."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"opsgenie:{seed}"))


def name_of(email: str) -> str:
    """`jane.doe@example.com` → "Jane Doe"."""
    local = email.split("@", 1)[0]
    return " ".join(part.capitalize() for part in local.replace("_", ".").replace("-", ".").split(".") if part)


def parse_query(query: str) -> dict[str, Any]:
    """Keys ending in `[]` and keys given more than once map to lists, the others to strings."""
    out: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if key in out:
            if not isinstance(out[key], list):
                out[key] = [out[key]]
            out[key].append(value)
        else:
            out[key] = [value] if key.endswith("[]") else value
    return out


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class Schedule:
    def __init__(self, schedule_id: str, name: str | None = None) -> None:
        self.id = schedule_id
        self.name = name or schedule_id
        self.levels: dict[int, list[dict[str, Any]]] = {}  # level → [{"email", "since"}]


class OnCallState:
    def __init__(self, service: str, token: str) -> None:
        self.service = service
        self.token = token
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.schedules: dict[str, Schedule] = {}
        self.incidents: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, list[dict[str, Any]]] = {}
        self.incident_numbers = itertools.count(1)
        self.down = False

    def pd_oncalls(self) -> list[tuple[Schedule, int, dict[str, Any]]]:
        return [
            (schedule, level, entry)
            for schedule in self.schedules.values()
            for level in sorted(schedule.levels)
            for entry in schedule.levels[level]
        ]


class Handler(BaseHTTPRequestHandler):
    server: "OnCallFakeServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.verbose:
            super().log_message(format, *args)

    # ---------------------------------------------------------------- helpers

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_request(self) -> dict[str, Any]:
        url = urllib.parse.urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        return {
            "at": time.time(),
            "method": self.command,
            "path": url.path,
            "query": parse_query(url.query),
            "headers": {h: self.headers[h] for h in RECORDED_HEADERS if self.headers.get(h) is not None},
            "body": body,
        }

    def og_reply(self, status: int, body: dict[str, Any]) -> None:
        self.reply(status, {**body, "took": 0.01 if status < 400 else 0.0, "requestId": str(uuid.uuid4())})

    # ---------------------------------------------------------------- routes

    def do_GET(self) -> None:
        self.route()

    def do_POST(self) -> None:
        self.route()

    def do_PUT(self) -> None:
        self.route()

    def do_DELETE(self) -> None:
        self.route()

    def route(self) -> None:
        req = self.read_request()
        state = self.server.state
        if req["path"].startswith("/_testbed/"):
            return self.testbed(req)
        with state.lock:
            state.requests.append(req)
            down = state.down
        if state.service == "pagerduty":
            if down:
                return self.reply(503, {"error": {"message": "Service Unavailable"}})
            if self.headers.get("Authorization") != f"Token token={state.token}":
                return self.reply(401, {"error": {"message": "Authentication required", "code": 2006}})
            return self.pagerduty(req)
        if down:
            return self.og_reply(503, {"message": "Service Unavailable"})
        if self.headers.get("Authorization") != f"GenieKey {state.token}":
            return self.og_reply(401, {"message": "Could not authenticate"})
        return self.opsgenie(req)

    # ---------------------------------------------------------------- PagerDuty

    def pagerduty(self, req: dict[str, Any]) -> None:
        parts = [urllib.parse.unquote(p) for p in req["path"].strip("/").split("/")]
        method = self.command
        if parts == ["oncalls"] and method == "GET":
            return self.pd_oncalls(req["query"])
        if len(parts) == 2 and parts[0] == "incidents" and method == "GET":
            with self.server.state.lock:
                incident = self.server.state.incidents.get(parts[1])
            if incident is None:
                return self.pd_not_found()
            return self.reply(200, {"incident": incident})
        if len(parts) == 3 and parts[0] == "incidents" and parts[2] == "notes" and method == "POST":
            return self.pd_add_note(parts[1], req)
        return self.pd_not_found()

    def pd_not_found(self) -> None:
        self.reply(404, {"error": {"message": "Not Found", "code": 2100}})

    def pd_invalid(self, *errors: str) -> None:
        self.reply(400, {"error": {"message": "Invalid Input Provided", "code": 2001, "errors": list(errors)}})

    def pd_oncalls(self, query: dict[str, Any]) -> None:
        try:
            limit = int(query.get("limit", PD_DEFAULT_LIMIT))
            offset = int(query.get("offset", 0))
        except (TypeError, ValueError):
            return self.pd_invalid("limit and offset must be integers")
        if limit < 1 or offset < 0:
            return self.pd_invalid("limit must be positive and offset not negative")
        limit = min(limit, PD_MAX_LIMIT)
        schedule_ids = set(as_list(query.get("schedule_ids[]")))
        policy_ids = set(as_list(query.get("escalation_policy_ids[]")))
        user_ids = set(as_list(query.get("user_ids[]")))
        expand_users = "users" in as_list(query.get("include[]"))
        with self.server.state.lock:
            entries = [
                self.pd_oncall(schedule, level, entry, expand_users)
                for schedule, level, entry in self.server.state.pd_oncalls()
            ]
        entries = [
            e for e in entries
            if (not schedule_ids or e["schedule"]["id"] in schedule_ids)
            and (not policy_ids or e["escalation_policy"]["id"] in policy_ids)
            and (not user_ids or e["user"]["id"] in user_ids)
        ]
        page = entries[offset : offset + limit]
        total = len(entries) if str(query.get("total", "false")).lower() == "true" else None
        self.reply(200, {"oncalls": page, "limit": limit, "offset": offset,
                         "more": offset + limit < len(entries), "total": total})

    @staticmethod
    def pd_oncall(schedule: Schedule, level: int, entry: dict[str, Any], expand_users: bool) -> dict[str, Any]:
        email = entry["email"]
        uid = pd_id(email)
        user: dict[str, Any] = {
            "id": uid,
            "type": "user_reference",
            "summary": name_of(email),
            "self": f"{PD_BASE}/users/{uid}",
            "html_url": f"{PD_WEB}/users/{uid}",
        }
        if expand_users:
            user.update(type="user", name=name_of(email), email=email)
        policy = f"EP{schedule.id}"
        since: datetime = entry["since"]
        return {
            "escalation_policy": {
                "id": policy,
                "type": "escalation_policy_reference",
                "summary": f"{schedule.name} escalation policy",
                "self": f"{PD_BASE}/escalation_policies/{policy}",
                "html_url": f"{PD_WEB}/escalation_policies/{policy}",
            },
            "escalation_level": level,
            "schedule": {
                "id": schedule.id,
                "type": "schedule_reference",
                "summary": schedule.name,
                "self": f"{PD_BASE}/schedules/{schedule.id}",
                "html_url": f"{PD_WEB}/schedules/{schedule.id}",
            },
            "user": user,
            "start": iso(since),
            "end": iso(since + timedelta(days=7)),
        }

    def pd_add_note(self, incident_id: str, req: dict[str, Any]) -> None:
        sender = (self.headers.get("From") or "").strip()
        if not sender:
            return self.reply(400, {"error": {"message": NO_FROM, "code": 2001}})
        state = self.server.state
        with state.lock:
            known = incident_id in state.incidents
        if not known:
            return self.pd_not_found()
        body = req["body"]
        note = body.get("note") if isinstance(body, dict) else None
        content = note.get("content") if isinstance(note, dict) else None
        if not isinstance(content, str) or not content.strip():
            return self.pd_invalid("Note content can't be blank.")
        with state.lock:
            notes = state.notes.setdefault(incident_id, [])
            created = {
                "id": pd_id(f"note:{incident_id}:{len(notes)}:{time.time_ns()}"),
                "user": {
                    "id": pd_id(sender),
                    "type": "user_reference",
                    "summary": sender,
                    "self": f"{PD_BASE}/users/{pd_id(sender)}",
                    "html_url": f"{PD_WEB}/users/{pd_id(sender)}",
                },
                "channel": {"summary": "The PagerDuty website or APIs"},
                "content": content,
                "created_at": iso(datetime.now(timezone.utc)),
            }
            notes.append(created)
        self.reply(201, {"note": created})

    # ---------------------------------------------------------------- Opsgenie

    def opsgenie(self, req: dict[str, Any]) -> None:
        parts = [urllib.parse.unquote(p) for p in req["path"].strip("/").split("/")]
        if not (len(parts) == 4 and parts[:2] == ["v2", "schedules"] and parts[3] == "on-calls"
                and self.command == "GET"):
            return self.og_reply(404, {"message": "Could not find the requested resource"})
        identifier, query = parts[2], req["query"]
        kind = query.get("scheduleIdentifierType", "id")
        flat = query.get("flat", "false")
        if kind not in ("id", "name"):
            return self.og_reply(422, {"message": "Invalid schedule identifier type"})
        if flat not in ("true", "false"):
            return self.og_reply(422, {"message": "Invalid flat parameter"})
        state = self.server.state
        with state.lock:
            if kind == "id":
                schedule = state.schedules.get(identifier)
            else:
                schedule = next((s for s in state.schedules.values() if s.name == identifier), None)
            emails = [e["email"] for e in schedule.levels.get(1, [])] if schedule else []
        if schedule is None:
            return self.og_reply(404, {"message": f"Schedule with identifier [{identifier}] could not be found"})
        data: dict[str, Any] = {"_parent": {"id": schedule.id, "name": schedule.name, "enabled": True}}
        if flat == "true":
            data["onCallRecipients"] = emails
        else:
            data["onCallParticipants"] = [{"id": og_id(e), "name": e, "type": "user"} for e in emails]
        self.og_reply(200, {"data": data})

    # ---------------------------------------------------------------- test endpoints

    def testbed(self, req: dict[str, Any]) -> None:
        state, path, method, body = self.server.state, req["path"], self.command, req["body"]
        if path == "/_testbed/requests" and method == "GET":
            with state.lock:
                return self.reply(200, list(state.requests))
        if path == "/_testbed/requests" and method == "DELETE":
            with state.lock:
                state.requests.clear()
            return self.reply(200, {"ok": True})
        if path == "/_testbed/down" and method == "PUT":
            with state.lock:
                if isinstance(body, dict) and "down" in body:
                    state.down = bool(body["down"])
                else:
                    state.down = not state.down
                return self.reply(200, {"ok": True, "down": state.down})
        if path == "/_testbed/oncall" and method == "PUT":
            return self.set_oncall(body)
        if state.service == "pagerduty":
            if path == "/_testbed/incidents" and method == "PUT":
                return self.set_incident(body)
            parts = path.strip("/").split("/")
            if len(parts) == 4 and parts[1] == "incidents" and parts[3] == "notes" and method == "GET":
                with state.lock:
                    return self.reply(200, list(state.notes.get(urllib.parse.unquote(parts[2]), [])))
        return self.reply(404, {"ok": False, "error": "unknown_testbed_path"})

    def set_oncall(self, body: Any) -> None:
        if not isinstance(body, dict):
            return self.reply(400, {"ok": False, "error": "expected a JSON object"})
        schedule_id, emails, level = body.get("schedule_id"), body.get("emails"), body.get("level", 1)
        name = body.get("name")
        if not isinstance(schedule_id, str) or not schedule_id:
            return self.reply(400, {"ok": False, "error": "schedule_id: a non-empty string"})
        if not isinstance(emails, list) or not all(isinstance(e, str) and e for e in emails):
            return self.reply(400, {"ok": False, "error": "emails: a list of e-mail addresses"})
        if not isinstance(level, int) or isinstance(level, bool) or level < 1:
            return self.reply(400, {"ok": False, "error": "level: an integer from 1"})
        if name is not None and (not isinstance(name, str) or not name):
            return self.reply(400, {"ok": False, "error": "name: a non-empty string"})
        state = self.server.state
        now = datetime.now(timezone.utc)
        with state.lock:
            schedule = state.schedules.setdefault(schedule_id, Schedule(schedule_id, name))
            if name:
                schedule.name = name
            if emails:
                # Who stays on call keeps their start; who is new starts now.
                since = {e["email"]: e["since"] for e in schedule.levels.get(level, [])}
                schedule.levels[level] = [{"email": e, "since": since.get(e, now)} for e in emails]
            else:
                schedule.levels.pop(level, None)
        return self.reply(200, {"ok": True, "schedule_id": schedule_id, "level": level, "emails": emails})

    def set_incident(self, body: Any) -> None:
        if not isinstance(body, dict):
            return self.reply(400, {"ok": False, "error": "expected a JSON object"})
        incident_id, status = body.get("id"), body.get("status", "triggered")
        if not isinstance(incident_id, str) or not incident_id:
            return self.reply(400, {"ok": False, "error": "id: a non-empty string"})
        if status not in INCIDENT_STATUSES:
            return self.reply(400, {"ok": False, "error": f"status: one of {', '.join(INCIDENT_STATUSES)}"})
        title = body.get("title") or f"Incident {incident_id}"
        state = self.server.state
        with state.lock:
            old = state.incidents.get(incident_id)
            number = old["incident_number"] if old else next(state.incident_numbers)
            incident = {
                "id": incident_id,
                "type": "incident",
                "incident_number": number,
                "title": title,
                "status": status,
                "summary": f"[#{number}] {title}",
                "self": f"{PD_BASE}/incidents/{incident_id}",
                "html_url": f"{PD_WEB}/incidents/{incident_id}",
                "created_at": old["created_at"] if old else iso(datetime.now(timezone.utc)),
            }
            state.incidents[incident_id] = incident
        return self.reply(200, {"ok": True, "incident": incident})


class OnCallFakeServer(ThreadingHTTPServer):
    """``with OnCallFakeServer("pagerduty", token) as s: s.url`` serves in a background thread."""

    daemon_threads = True

    def __init__(self, service: str, token: str, port: int = 0, verbose: bool = False):
        if service not in SERVICES:
            raise ValueError(f"service must be one of {SERVICES}, not {service!r}")
        if not token:
            raise ValueError("token must not be empty")
        super().__init__((HOST, port), Handler)
        self.state = OnCallState(service, token)
        self.verbose = verbose
        self.port = self.server_address[1]
        self.url = f"http://{HOST}:{self.port}"
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "OnCallFakeServer":
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
        self.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake PagerDuty or Opsgenie on-call API")
    parser.add_argument("--service", required=True, choices=SERVICES)
    parser.add_argument("--token", required=True, help="the API token clients must present")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args()
    server = OnCallFakeServer(args.service, args.token, args.port, verbose=args.verbose)
    print(f"READY port={server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
