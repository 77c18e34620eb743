"""Fast self-tests of the on-call fakes (testbed/oncallfake.py), in-process on ephemeral ports.

    python -m unittest discover -s testbed -p 'test_oncallfake.py'    (from the repository root)
"""

from __future__ import annotations

import json
import sys
import unittest
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import oncallfake  # noqa: E402

TOKEN = "test-token-0123"
PD_AUTH = {"Authorization": f"Token token={TOKEN}", "Accept": "application/vnd.pagerduty+json;version=2",
           "Content-Type": "application/json"}
OG_AUTH = {"Authorization": f"GenieKey {TOKEN}", "Content-Type": "application/json"}
OG_SCHEDULE = "6f1c3c1e-0000-4000-8000-00000000b6a1"


def call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw, status = resp.read(), resp.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


class PagerDutyFakeTest(unittest.TestCase):
    def setUp(self) -> None:
        self.fake = oncallfake.OnCallFakeServer("pagerduty", TOKEN).__enter__()
        self.url = self.fake.url

    def tearDown(self) -> None:
        self.fake.__exit__(None, None, None)

    def set_oncall(self, schedule: str, emails: list[str], level: int | None = None) -> None:
        body: dict[str, Any] = {"schedule_id": schedule, "emails": emails}
        if level is not None:
            body["level"] = level
        status, answer = call("PUT", f"{self.url}/_testbed/oncall", body)
        self.assertEqual(status, 200, answer)

    def oncalls(self, query: list[tuple[str, str]]) -> dict[str, Any]:
        status, body = call("GET", f"{self.url}/oncalls?{urllib.parse.urlencode(query)}", headers=PD_AUTH)
        self.assertEqual(status, 200, body)
        return body

    def who(self, body: dict[str, Any]) -> list[tuple[str, int, str]]:
        return [(o["schedule"]["id"], o["escalation_level"], o["user"]["summary"]) for o in body["oncalls"]]

    def test_auth_is_required(self) -> None:
        unauthorized = {"error": {"message": "Authentication required", "code": 2006}}
        self.assertEqual(call("GET", f"{self.url}/oncalls"), (401, unauthorized))
        self.assertEqual(call("GET", f"{self.url}/oncalls", headers={"Authorization": "Token token=wrong"}),
                         (401, unauthorized))
        self.assertEqual(call("GET", f"{self.url}/oncalls", headers={"Authorization": f"Bearer {TOKEN}"}),
                         (401, unauthorized))
        self.assertEqual(call("GET", f"{self.url}/incidents/PX", headers={})[0], 401)
        self.assertEqual(call("GET", f"{self.url}/oncalls", headers=PD_AUTH)[0], 200)
        self.assertEqual(call("GET", f"{self.url}/nowhere", headers=PD_AUTH),
                         (404, {"error": {"message": "Not Found", "code": 2100}}))

    def test_oncalls_shape_and_filters(self) -> None:
        self.set_oncall("PBGSCHED1", ["alice@example.com"])
        self.set_oncall("PBGSCHED2", ["bob@example.com"], level=1)
        self.set_oncall("PBGSCHED2", ["erin@example.com", "frank@example.com"], level=2)

        body = self.oncalls([("schedule_ids[]", "PBGSCHED1")])
        self.assertEqual((body["limit"], body["offset"], body["more"], body["total"]), (25, 0, False, None))
        [entry] = body["oncalls"]
        self.assertEqual(set(entry), {"escalation_policy", "escalation_level", "schedule", "user", "start", "end"})
        self.assertEqual(entry["escalation_level"], 1)
        self.assertEqual({k: entry["schedule"][k] for k in ("id", "type")},
                         {"id": "PBGSCHED1", "type": "schedule_reference"})
        self.assertEqual({k: entry["escalation_policy"][k] for k in ("id", "type")},
                         {"id": "EPPBGSCHED1", "type": "escalation_policy_reference"})
        self.assertIn("summary", entry["escalation_policy"])
        self.assertEqual(entry["user"]["type"], "user_reference")
        self.assertEqual(entry["user"]["summary"], "Alice")
        self.assertNotIn("email", entry["user"])
        self.assertRegex(entry["user"]["id"], r"^P[A-Z2-7]{6}$")
        self.assertRegex(entry["start"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertLess(entry["start"], entry["end"])

        expanded = self.oncalls([("schedule_ids[]", "PBGSCHED1"), ("include[]", "users")])["oncalls"][0]["user"]
        self.assertEqual((expanded["type"], expanded["email"], expanded["id"]),
                         ("user", "alice@example.com", entry["user"]["id"]))

        # Several schedules, by schedule and by escalation policy; levels stay apart.
        both = self.oncalls([("schedule_ids[]", "PBGSCHED1"), ("schedule_ids[]", "PBGSCHED2")])
        self.assertEqual(self.who(both), [("PBGSCHED1", 1, "Alice"), ("PBGSCHED2", 1, "Bob"),
                                          ("PBGSCHED2", 2, "Erin"), ("PBGSCHED2", 2, "Frank")])
        by_policy = self.oncalls([("escalation_policy_ids[]", "EPPBGSCHED2"), ("include[]", "users")])
        self.assertEqual([(o["escalation_level"], o["user"]["email"]) for o in by_policy["oncalls"]],
                         [(1, "bob@example.com"), (2, "erin@example.com"), (2, "frank@example.com")])
        # Both filters given: both must match.
        self.assertEqual(self.oncalls([("schedule_ids[]", "PBGSCHED1"),
                                       ("escalation_policy_ids[]", "EPPBGSCHED2")])["oncalls"], [])
        self.assertEqual(len(self.oncalls([])["oncalls"]), 4)
        self.assertEqual(self.oncalls([("schedule_ids[]", "PUNKNOWN")])["oncalls"], [])

        # What was asked is recorded, repeated keys as lists.
        recorded = call("GET", f"{self.url}/_testbed/requests")[1]
        self.assertEqual(recorded[2]["query"], {"schedule_ids[]": ["PBGSCHED1", "PBGSCHED2"]})
        self.assertEqual(recorded[1]["query"], {"schedule_ids[]": ["PBGSCHED1"], "include[]": ["users"]})
        self.assertEqual(recorded[0]["headers"]["Authorization"], f"Token token={TOKEN}")
        self.assertEqual(recorded[0]["headers"]["Accept"], "application/vnd.pagerduty+json;version=2")
        call("DELETE", f"{self.url}/_testbed/requests")
        self.assertEqual(call("GET", f"{self.url}/_testbed/requests")[1], [])

    def test_pagination(self) -> None:
        emails = [f"user{i:02d}@example.com" for i in range(7)]
        self.set_oncall("PBGSCHED1", emails)
        seen: list[str] = []
        offset, pages = 0, 0
        while True:
            body = self.oncalls([("schedule_ids[]", "PBGSCHED1"), ("include[]", "users"),
                                 ("limit", "3"), ("offset", str(offset))])
            self.assertEqual((body["limit"], body["offset"]), (3, offset))
            seen += [o["user"]["email"] for o in body["oncalls"]]
            pages += 1
            if not body["more"]:
                break
            offset += body["limit"]
        self.assertEqual((seen, pages), (emails, 3))
        self.assertEqual(self.oncalls([("limit", "1000")])["limit"], 100)
        self.assertEqual(self.oncalls([("total", "true")])["total"], 7)
        self.assertEqual(self.oncalls([("offset", "7")]), {"oncalls": [], "limit": 25, "offset": 7,
                                                           "more": False, "total": None})
        self.assertEqual(call("GET", f"{self.url}/oncalls?limit=x", headers=PD_AUTH)[0], 400)

    def test_put_oncall_replaces(self) -> None:
        self.set_oncall("PBGSCHED1", ["alice@example.com", "bob@example.com"])
        self.set_oncall("PBGSCHED1", ["carol@example.com"], level=2)
        before = {o["user"]["summary"]: o["start"] for o in self.oncalls([])["oncalls"]}
        self.set_oncall("PBGSCHED1", ["bob@example.com", "dave@example.com"], level=1)
        after = self.oncalls([("schedule_ids[]", "PBGSCHED1")])
        self.assertEqual(self.who(after), [("PBGSCHED1", 1, "Bob"), ("PBGSCHED1", 1, "Dave"),
                                           ("PBGSCHED1", 2, "Carol")])
        self.assertEqual(after["oncalls"][0]["start"], before["Bob"])  # still on call since then
        self.set_oncall("PBGSCHED1", [])  # level 1 cleared, level 2 kept
        self.assertEqual(self.who(self.oncalls([])), [("PBGSCHED1", 2, "Carol")])
        self.set_oncall("PBGSCHED1", [], level=2)
        self.assertEqual(self.oncalls([])["oncalls"], [])
        # curl -d sends form-encoded: the body is read as JSON all the same.
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        body = b'{"schedule_id":"PBGSCHED1","emails":["alice@example.com"],"level":1}'
        self.assertEqual(call("PUT", f"{self.url}/_testbed/oncall", body, form)[0], 200)
        self.assertEqual(self.who(self.oncalls([])), [("PBGSCHED1", 1, "Alice")])
        for bad in ({"emails": []}, {"schedule_id": "S", "emails": "a@example.com"},
                    {"schedule_id": "S", "emails": [], "level": 0}, {"schedule_id": "S", "emails": [], "level": "1"}):
            self.assertEqual(call("PUT", f"{self.url}/_testbed/oncall", bad)[0], 400, bad)
        # Control requests are not recorded.
        self.assertTrue(all(r["path"] == "/oncalls" for r in call("GET", f"{self.url}/_testbed/requests")[1]))

    def test_incidents_and_notes(self) -> None:
        not_found = (404, {"error": {"message": "Not Found", "code": 2100}})
        self.assertEqual(call("GET", f"{self.url}/incidents/PINC001", headers=PD_AUTH), not_found)
        self.assertEqual(call("PUT", f"{self.url}/_testbed/incidents",
                              {"id": "PINC001", "status": "triggered", "title": "Database down"})[0], 200)
        status, body = call("GET", f"{self.url}/incidents/PINC001", headers=PD_AUTH)
        self.assertEqual(status, 200)
        incident = body["incident"]
        self.assertEqual({k: incident[k] for k in ("id", "type", "incident_number", "title", "status", "html_url")},
                         {"id": "PINC001", "type": "incident", "incident_number": 1, "title": "Database down",
                          "status": "triggered", "html_url": "https://example.pagerduty.com/incidents/PINC001"})
        self.assertIn("Database down", incident["summary"])
        call("PUT", f"{self.url}/_testbed/incidents", {"id": "PINC002", "status": "resolved", "title": "Old"})
        call("PUT", f"{self.url}/_testbed/incidents", {"id": "PINC001", "status": "acknowledged", "title": "Database down"})
        again = call("GET", f"{self.url}/incidents/PINC001", headers=PD_AUTH)[1]["incident"]
        self.assertEqual((again["status"], again["incident_number"]), ("acknowledged", 1))
        self.assertEqual(call("GET", f"{self.url}/incidents/PINC002", headers=PD_AUTH)[1]["incident"]["incident_number"], 2)
        self.assertEqual(call("PUT", f"{self.url}/_testbed/incidents", {"id": "X", "status": "open"})[0], 400)

        note = {"note": {"content": "break-glass: alice@example.com granted BreakGlassGated"}}
        no_from = call("POST", f"{self.url}/incidents/PINC001/notes", note, PD_AUTH)
        self.assertEqual(no_from, (400, {"error": {"message": oncallfake.NO_FROM, "code": 2001}}))
        self.assertIn('"From" header', oncallfake.NO_FROM)
        with_from = {**PD_AUTH, "From": "break-glass@example.com"}
        self.assertEqual(call("POST", f"{self.url}/incidents/PNOPE/notes", note, with_from), not_found)
        self.assertEqual(call("POST", f"{self.url}/incidents/PINC001/notes", {"note": {}}, with_from)[0], 400)
        self.assertEqual(call("POST", f"{self.url}/incidents/PINC001/notes", {"content": "x"}, with_from)[0], 400)
        status, body = call("POST", f"{self.url}/incidents/PINC001/notes", note, with_from)
        self.assertEqual(status, 201)
        self.assertEqual(body["note"]["content"], note["note"]["content"])
        self.assertEqual((body["note"]["user"]["type"], body["note"]["user"]["summary"]),
                         ("user_reference", "break-glass@example.com"))
        self.assertRegex(body["note"]["id"], r"^P")
        self.assertRegex(body["note"]["created_at"], r"^\d{4}-\d\d-\d\dT")
        self.assertEqual(call("GET", f"{self.url}/_testbed/incidents/PINC001/notes")[1], [body["note"]])
        self.assertEqual(call("GET", f"{self.url}/_testbed/incidents/PINC002/notes")[1], [])
        recorded = call("GET", f"{self.url}/_testbed/requests")[1][-1]
        self.assertEqual((recorded["method"], recorded["path"], recorded["body"], recorded["headers"]["From"]),
                         ("POST", "/incidents/PINC001/notes", note, "break-glass@example.com"))

    def test_down_is_503_for_api_paths_only(self) -> None:
        self.set_oncall("PBGSCHED1", ["alice@example.com"])
        self.assertEqual(call("PUT", f"{self.url}/_testbed/down", {"down": True}), (200, {"ok": True, "down": True}))
        unavailable = (503, {"error": {"message": "Service Unavailable"}})
        self.assertEqual(call("GET", f"{self.url}/oncalls", headers=PD_AUTH), unavailable)
        self.assertEqual(call("GET", f"{self.url}/oncalls"), unavailable)
        self.assertEqual(call("GET", f"{self.url}/incidents/P1", headers=PD_AUTH), unavailable)
        self.set_oncall("PBGSCHED1", ["bob@example.com"])  # control paths still work
        self.assertEqual(len(call("GET", f"{self.url}/_testbed/requests")[1]), 3)
        call("PUT", f"{self.url}/_testbed/down", {"down": False})
        self.assertEqual(self.who(self.oncalls([])), [("PBGSCHED1", 1, "Bob")])


class OpsgenieFakeTest(unittest.TestCase):
    def setUp(self) -> None:
        self.fake = oncallfake.OnCallFakeServer("opsgenie", TOKEN).__enter__()
        self.url = self.fake.url

    def tearDown(self) -> None:
        self.fake.__exit__(None, None, None)

    def on_calls(self, identifier: str, query: str = "flat=true", headers: dict[str, str] = OG_AUTH) -> tuple[int, Any]:
        return call("GET", f"{self.url}/v2/schedules/{urllib.parse.quote(identifier)}/on-calls?{query}", headers=headers)

    def test_auth_and_unknown_schedule(self) -> None:
        for headers in ({}, {"Authorization": "GenieKey wrong"}, {"Authorization": f"Token token={TOKEN}"}):
            status, body = self.on_calls(OG_SCHEDULE, headers=headers)
            self.assertEqual((status, body["message"]), (401, "Could not authenticate"))
            self.assertEqual(set(body), {"message", "took", "requestId"})
        status, body = self.on_calls(OG_SCHEDULE)
        self.assertEqual((status, body["message"]), (404, f"Schedule with identifier [{OG_SCHEDULE}] could not be found"))
        self.assertIn("requestId", body)
        self.assertEqual(call("GET", f"{self.url}/v2/alerts", headers=OG_AUTH)[0], 404)

    def test_flat_and_participants(self) -> None:
        # An empty PUT creates the schedule: known, nobody on call.
        call("PUT", f"{self.url}/_testbed/oncall", {"schedule_id": OG_SCHEDULE, "emails": []})
        status, body = self.on_calls(OG_SCHEDULE)
        self.assertEqual(status, 200)
        self.assertEqual(body["data"], {"_parent": {"id": OG_SCHEDULE, "name": OG_SCHEDULE, "enabled": True},
                                        "onCallRecipients": []})
        self.assertEqual(set(body), {"data", "took", "requestId"})

        call("PUT", f"{self.url}/_testbed/oncall",
             {"schedule_id": OG_SCHEDULE, "emails": ["alice@example.com", "bob@example.com"], "level": 1})
        call("PUT", f"{self.url}/_testbed/oncall", {"schedule_id": OG_SCHEDULE, "emails": ["erin@example.com"], "level": 2})
        self.assertEqual(self.on_calls(OG_SCHEDULE)[1]["data"]["onCallRecipients"],
                         ["alice@example.com", "bob@example.com"])  # level 2 is stored, not returned
        participants = self.on_calls(OG_SCHEDULE, "flat=false")[1]["data"]
        self.assertNotIn("onCallRecipients", participants)
        self.assertEqual([(p["name"], p["type"]) for p in participants["onCallParticipants"]],
                         [("alice@example.com", "user"), ("bob@example.com", "user")])
        self.assertRegex(participants["onCallParticipants"][0]["id"], r"^[0-9a-f-]{36}$")
        self.assertIn("onCallParticipants", self.on_calls(OG_SCHEDULE, "")[1]["data"])  # flat defaults to false

        call("PUT", f"{self.url}/_testbed/oncall", {"schedule_id": "s2", "emails": ["ken@example.com"], "name": "ops"})
        self.assertEqual(self.on_calls("ops", "scheduleIdentifierType=name&flat=true")[1]["data"]["onCallRecipients"],
                         ["ken@example.com"])
        self.assertEqual(self.on_calls("ops", "scheduleIdentifierType=id&flat=true")[0], 404)

        recorded = call("GET", f"{self.url}/_testbed/requests")[1][0]
        self.assertEqual((recorded["path"], recorded["query"], recorded["headers"]["Authorization"]),
                         (f"/v2/schedules/{OG_SCHEDULE}/on-calls", {"flat": "true"}, f"GenieKey {TOKEN}"))

    def test_down(self) -> None:
        call("PUT", f"{self.url}/_testbed/oncall", {"schedule_id": OG_SCHEDULE, "emails": ["alice@example.com"]})
        call("PUT", f"{self.url}/_testbed/down", {"down": True})
        status, body = self.on_calls(OG_SCHEDULE)
        self.assertEqual((status, body["message"]), (503, "Service Unavailable"))
        call("PUT", f"{self.url}/_testbed/down", {"down": False})
        self.assertEqual(self.on_calls(OG_SCHEDULE)[1]["data"]["onCallRecipients"], ["alice@example.com"])
        # PagerDuty's control paths are not Opsgenie's.
        self.assertEqual(call("PUT", f"{self.url}/_testbed/incidents", {"id": "P1"})[0], 404)


if __name__ == "__main__":
    unittest.main()
