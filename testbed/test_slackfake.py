"""Fast self-tests of the Slack fake (testbed/slackfake.py), in-process on an ephemeral port:
the answers the binary relies on look like Slack's.

    python -m unittest discover -s testbed -p 'test_slackfake.py'    (from the repository root)
"""

from __future__ import annotations

import json
import sys
import unittest
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import slackfake  # noqa: E402

AUTH = {"Authorization": "Bearer xoxb-test", "Content-Type": "application/json"}


class SlackFakeTest(unittest.TestCase):
    def setUp(self) -> None:
        self.fake = slackfake.SlackFakeServer().__enter__()
        self.addCleanup(self.fake.__exit__, None, None, None)
        users = {"U0DAVE": {"id": "U0DAVE", "profile": {"email": "Dave@Example.com"}}}
        self.call("/_testbed/users", users, auth=False)

    def call(self, path: str, body: Any, auth: bool = True) -> Any:
        req = urllib.request.Request(
            f"{self.fake.url}{path}", data=json.dumps(body).encode(), method="POST",
            headers=AUTH if auth else {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def test_a_direct_message_lands_in_its_own_conversation_which_is_what_updates_it(self) -> None:
        posted = self.call("/api/chat.postMessage", {"channel": "U0DAVE", "text": "hi"})
        self.assertEqual(posted["channel"], "D0DAVE")
        in_channel = self.call("/api/chat.postMessage", {"channel": "C0OPS", "text": "hi"})
        self.assertEqual(in_channel["channel"], "C0OPS")
        self.assertNotEqual(posted["ts"], in_channel["ts"])
        by_user = self.call("/api/chat.update", {"channel": "U0DAVE", "ts": posted["ts"], "text": "x"})
        self.assertEqual(by_user, {"ok": False, "error": "channel_not_found"})
        by_dm = self.call("/api/chat.update", {"channel": "D0DAVE", "ts": posted["ts"], "text": "x"})
        self.assertEqual(by_dm, {"ok": True})

    def test_users_are_looked_up_by_email_in_any_case(self) -> None:
        found = self.call("/api/users.lookupByEmail", {"email": "dave@example.COM"})
        self.assertEqual(found["user"]["id"], "U0DAVE")
        missing = self.call("/api/users.lookupByEmail", {"email": "nobody@example.com"})
        self.assertEqual(missing, {"ok": False, "error": "users_not_found"})
        empty = self.call("/api/users.lookupByEmail", {"email": ""})
        self.assertEqual(empty["error"], "users_not_found")


if __name__ == "__main__":
    unittest.main()
