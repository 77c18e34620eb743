"""Self-tests of testbed/scale.py's pure parts: the items it seeds are the items the binary
writes (checked against the Rust source's attribute names), and its policy is well formed.

    python -m unittest discover -s testbed        (from the repository root)
"""

from __future__ import annotations

import random
import re
import sys
import tomllib
import unittest
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale  # noqa: E402
import stack  # noqa: E402

SRC = stack.REPO / "src"


def rust_reads(path: Path) -> dict[str, set[str]]:
    """The attributes `from_item` reads, by how: req_s/opt_s (S), num (N), opt_b (BOOL), opt_t (S)."""
    text = path.read_text()
    body = text[text.index("fn from_item("):]
    out: dict[str, set[str]] = {}
    for how in ("req_s", "opt_s", "num", "opt_b", "opt_t"):
        out[how] = set(re.findall(rf'\b{how}\("([a-z_]+)"\)', body))
    out["opt_s"] |= {"review_pending"}  # read through the REVIEW_PENDING constant
    return out


def rust_names(path: Path) -> set[str]:
    """Every attribute name a file of the request store writes (attribute(), to_item, …)."""
    return set(re.findall(r'\(\s*"([a-z_]+)"(?:\.to_owned\(\))?,', path.read_text()))


def sample_org() -> scale.Org:
    org = scale.make_org(200, 20)
    org.ps_arns = {n: f"arn:aws:sso:::permissionSet/ssoins-0000000000000000/ps-{i:016x}"
                   for i, n in enumerate(org.permission_sets)}
    org.user_ids = {e: f"9067000000-{i:08d}" for i, (_, e) in enumerate(org.users)}
    for _, email, _, _ in stack.USERS[:2]:
        org.user_ids[email] = f"9067000000-{email[:4]}"
    return org


def attribute_type(value: dict) -> str:
    return next(iter(value))


class ItemsTest(unittest.TestCase):
    def setUp(self) -> None:
        self.org = sample_org()
        self.rng = random.Random(1)
        store = SRC / "aws" / "store"
        self.reads = rust_reads(store / "requests" / "item.rs")
        self.known = rust_names(store / "requests.rs") | rust_names(store / "requests" / "item.rs")

    def history(self) -> list[dict]:
        return next(scale.history_chunks(self.org, 3, self.rng, 3))

    def test_a_historical_request_is_what_the_binary_writes(self) -> None:
        items = self.history()
        requests = [i for i in items if i["sk"] == {"S": "request"}]
        self.assertEqual(len(requests), 3)
        for item in requests:
            for name in self.reads["req_s"] | {"requested_at"}:
                self.assertEqual(attribute_type(item[name]), "S", name)
            for name in self.reads["num"] - {"approval_timeout_secs"}:
                self.assertEqual(attribute_type(item[name]), "N", name)
            for name, value in item.items():
                self.assertIn(name, self.known | {"pk", "sk"}, f"{name} is no attribute the binary knows")
                if name in self.reads["opt_b"]:
                    self.assertEqual(attribute_type(value), "BOOL", name)
                elif name in self.reads["opt_t"] | self.reads["opt_s"] | self.reads["req_s"]:
                    self.assertEqual(attribute_type(value), "S", name)
            self.assertRegex(item["pk"]["S"], r"^bg-[0-9a-f]{24}$")
            self.assertEqual(item["status"], {"S": "reported"})
            self.assertNotIn("review_pending", item, "history must not wait for review")
            self.assertEqual(item["day"]["S"], item["requested_at"]["S"][:10])
            for name in self.reads["opt_t"] | {"requested_at"}:
                if name in item:
                    self.assertRegex(item[name]["S"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", name)
            self.assertIn(item["review_outcome"]["S"], ("fine", "follow_up"))

    def test_audit_rows_follow_the_request_versions(self) -> None:
        items = self.history()
        request = next(i for i in items if i["sk"] == {"S": "request"})
        audits = [i for i in items if i["pk"] == request["pk"] and i["sk"]["S"].startswith("audit#")]
        sks = [a["sk"]["S"] for a in audits]
        self.assertTrue(all(re.fullmatch(r"audit#\d{6}", sk) for sk in sks), sks)
        self.assertEqual(sks[0], "audit#000001")
        self.assertEqual(int(sks[-1][6:]), int(request["version"]["N"]), "the last audit row is the version's")
        self.assertEqual([a["event"]["S"] for a in audits][:2], ["requested", "granting"])
        self.assertEqual(audits[0]["actor"], request["slack_user_id"])
        for a in audits:
            self.assertEqual(set(a), {"pk", "sk", "event", "actor", "detail", "at"})

    def test_lease_and_intent_items(self) -> None:
        arn = self.org.ps_arns[self.org.permission_sets[0]]
        lease = scale.lease_item("u-1", "200000000001", arn, ["bg-" + "0" * 24])
        self.assertEqual(lease["pk"]["S"], f"lease#u-1#200000000001#{arn}")
        self.assertEqual(lease["sk"], {"S": "lease"})
        self.assertEqual({k: attribute_type(v) for k, v in lease.items() if k not in ("pk", "sk")},
                         {"holders": "L", "standing": "BOOL", "releasing": "BOOL", "provisioned": "BOOL",
                          "live": "S", "version": "N"})
        leases_rs = (SRC / "aws" / "store" / "leases.rs").read_text()
        for name in ("holders", "standing", "releasing", "provisioned", "version"):
            self.assertIn(f'"{name}"', leases_rs, name)
        intent = scale.intent_item("u-1", "200000000001", arn, "bg-" + "1" * 24, datetime.now(timezone.utc))
        self.assertEqual(intent["pk"]["S"], f"created#u-1#200000000001#{arn}")
        self.assertEqual((intent["sk"], intent["live"]), ({"S": "intent"}, {"S": "intent"}))
        self.assertEqual(set(intent), {"pk", "sk", "request_id", "at", "live"})
        store = (SRC / "aws" / "store" / "mod.rs").read_text()
        for kind in ("lease", "intent"):
            self.assertRegex(store, rf'Live::{kind.title()} => "{kind}"', "the live index's kinds")

    def test_request_ids_and_times(self) -> None:
        self.assertRegex(scale.request_id("scale", "lease", 7), r"^bg-[0-9a-f]{24}$")
        self.assertEqual(scale.request_id("a", 1), scale.request_id("a", 1))
        self.assertNotEqual(scale.request_id("a", 1), scale.request_id("a", 2))
        t = datetime(2026, 11, 24, 9, 30, 15, 999000, tzinfo=timezone(timedelta(hours=1)))
        self.assertEqual(scale.rfc3339(t), "2026-11-24T08:30:15Z")
        self.assertEqual(scale.day_of(t), "2026-11-24")

    def test_the_modal_callback_is_the_binarys(self) -> None:
        payload = (SRC / "slack" / "payload.rs").read_text()
        self.assertIn(f'MODAL_CALLBACK: &str = "{scale.MODAL_CALLBACK}"', payload)


class PolicyTest(unittest.TestCase):
    def test_the_policy_keeps_the_example_and_names_the_organization(self) -> None:
        org = scale.make_org(1000, 20)
        policy = tomllib.loads(scale.policy_text(org))
        rules = {r["name"]: r for r in policy["rule"]}
        for example in ("oncall", "sre-readonly", "oncall-gated"):
            self.assertIn(example, rules)
        self.assertEqual(rules["oncall"]["permission_sets"], ["BreakGlassAdmin"])
        wide = rules[scale.SCALE_RULE]
        self.assertEqual((wide["accounts"], len(wide["permission_sets"])), (["*"], 20))
        self.assertNotIn("standing_access", wide, "remove needs named accounts and permission sets")
        explicit = [r for r in policy["rule"] if r["name"].startswith("scale-explicit-")]
        self.assertEqual(len(explicit), scale.EXPLICIT_RULES)
        self.assertEqual(sum(len(r["accounts"]) * len(r["permission_sets"]) for r in explicit), 500)
        self.assertEqual(sum(r["standing_access"] == "remove" for r in explicit), scale.REMOVE_RULES)
        names = [r["name"] for r in policy["rule"]]
        self.assertLess(names.index(explicit[-1]["name"]), names.index(scale.SCALE_RULE), "explicit terms first")
        self.assertEqual(len(policy["accounts"]), 101)
        self.assertEqual(policy["users"]["U0SCALE0001"], "scale0001@example.com")
        self.assertIn(stack.USERS[0][0], wide["slack_users"], "the example user sees the type-ahead")

    def test_standing_access_sits_where_it_is_kept(self) -> None:
        org = sample_org()
        live = scale.pick_live(org, 30, 5, 20, random.Random(2))
        remove = set(org.explicit_pairs(remove=True))
        names = {arn: n for n, arn in org.ps_arns.items()}
        for account, arn, _ in live.standing:
            self.assertIn((account, names[arn]), org.explicit_pairs(remove=False))
            self.assertNotIn((account, names[arn]), remove)
        triples = [(r.principal, r.account, r.ps_arn) for r in live.leases + live.orphans]
        triples += [(u, a, p) for a, p, u in live.standing]
        self.assertEqual(len(triples), len(set(triples)), "one assignment a triple")
        self.assertEqual(sum(1 for r in live.leases if r.rule != scale.SCALE_RULE), 10)


class FiguresTest(unittest.TestCase):
    def test_percentiles_are_nearest_rank(self) -> None:
        values = [float(v) for v in range(1, 201)]
        self.assertEqual(scale.percentile(values, 50), 100.0)
        self.assertEqual(scale.percentile(values, 99), 198.0)
        self.assertEqual(scale.percentile([5.0], 99), 5.0)

    def test_typed_texts_ask_both_pickers(self) -> None:
        texts = scale.typed_texts(sample_org(), 200, random.Random(3))
        pickers = [p for p, _, _ in texts]
        self.assertEqual(pickers.count("account"), 150)
        self.assertEqual(pickers.count("permission_set"), 50)
        self.assertTrue(all(t for _, t, _ in texts), "nothing typed is no keystroke")
        self.assertTrue(all(a is not None for p, _, a in texts if p == "permission_set"))


if __name__ == "__main__":
    unittest.main()
