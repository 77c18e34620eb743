"""`make scale`: break glass at the size of a large organization, on the local stack.

    python testbed/scale.py [--binary PATH] [--accounts 1000] [--permission-sets 20]
                            [--history 100000] [--leases 300] [--standing 50] [--orphans 5]
                            [--suggestions 200] [--calls-per-second 50] [--max-minutes 25]

Starts its own local stack (testbed/stack.py, log in target/scale/stack.log) with a generated
policy (target/scale/policy.toml: the stack's example rules, with permission sets named, plus
an allow rule for every account of the organization and the 20 permission sets, and 100
accounts x 5 permission sets named explicitly in ten rules, two of them with
`standing_access = "remove"`), and seeds it:

- an organization of 1,000 accounts (ids 200000000001 on, the same every run) and 20
  permission sets in Identity Center, 60 users;
- 100,000 historical requests, each with its audit rows, exactly as the binary writes them
  (status reported, reviewed), 1.1 million items, put through moto's backend;
- 300 live leases: the request (granted, expiring hours from now), its lease and creation
  intent, the Identity Center assignment, and a RUNNING execution of the real state machine
  named by the request id, waiting in Hold (its Grant task finds the request granted and hands
  over; Hold stores its token);
- 5 orphans: a lease whose request is already revoked while its assignment is still there
  (every reconciler must revoke them), and 50 standing assignments on explicitly named pairs
  whose rules keep standing access (warn).

Then it measures, with moto's call log and DynamoDB read counter cleared first:

- the reconciler: `{"type": "reconcile"}` through the Lambda invoke API, run after run until
  its summary says the sweep is complete (a summary without "sweep" covers everything in one
  run): the duration of each run and in all, the AWS calls by API, the DynamoDB calls and the
  items they read by operation and index, and the summary's counts;
- the modal's type-ahead: 200 signed `block_suggestion` posts (account-name fragments,
  account-id prefixes, permission-set fragments), one after the other after a few warm-ups:
  p50, p99 and max, and how many options came back.

Prints a figures table (also target/scale/figures.txt), stops the stack (also on an error or
Ctrl-C) and exits non-zero if anything failed: a seeding step, a reconcile run, an assignment
the reconciler should have kept or revoked, or a type-ahead that did not answer with options.

What measures the design and what measures the emulator (docs/scale.md has the details):

- design: the AWS calls by API, the DynamoDB calls, the items they return and evaluate
  ("scanned": what DynamoDB bills), the number of reconcile runs a sweep takes and the counts;
- mostly the emulator: every duration. The reconciler's runs are paced (Identity Center calls
  a second, here `--calls-per-second`, passed as IDENTITY_CENTER_CALLS_PER_SECOND), and moto
  still walks the whole table on every Query of an index (about a second at 1.1 million items)
  and answers a Scan page in about 0.4 s; the type-ahead's latency is the debug binary's
  behind `cargo lambda watch` on this machine, not Lambda's. Seeding times are moto's only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent))

import stack as stk  # noqa: E402
from signing import signed_headers  # noqa: E402

OUT_DIR = stk.REPO / "target" / "scale"
FIRST_ACCOUNT = 200_000_000_001  # account ids are fixed: runs stay comparable
MODAL_CALLBACK = "break_glass_request"  # src/slack/payload.rs MODAL_CALLBACK
WORKER_ACTOR = "break-glass"  # src/handlers/worker/mod.rs ACTOR
SCALE_RULE = "scale-org-wide"
EXPLICIT_RULES = 10  # rules naming 10 accounts x 5 permission sets each
REMOVE_RULES = 2  # the last ones say standing_access = "remove"
EXPLICIT_ACCOUNTS_PER_RULE = 10
EXPLICIT_SETS_PER_RULE = 5
USERS = 60
TEAMS = ["payments", "ledger", "search", "identity", "checkout", "catalog", "billing", "data",
         "ml", "mobile", "web", "infra", "security", "network", "analytics", "support",
         "logistics", "pricing", "risk", "growth"]
STAGES = ["prod", "staging", "dev", "sandbox", "shared"]
PERMISSION_SETS = ["AdministratorAccess", "ReadOnlyAccess", "PowerUserAccess", "ViewOnlyAccess",
                   "DatabaseAdmin", "NetworkAdmin", "SecurityAudit", "BillingAdmin", "SupportUser",
                   "DataScientist", "IncidentResponder", "S3Admin", "EKSAdmin", "LambdaDeveloper",
                   "DynamoDBOperator", "KMSOperator", "CloudWatchReader", "Route53Admin",
                   "IAMAuditor", "CostExplorer"]
AUDIT_DETAIL = "scale harness: a historical request"


class ScaleError(Exception):
    """A phase failed; the message says what."""


# ------------------------------------------------------------------ the organization


@dataclass
class Rule:
    name: str
    accounts: list[str]
    permission_sets: list[str]
    remove: bool


@dataclass
class Org:
    """What the harness seeds and the policy names: accounts, permission sets, users, rules."""

    accounts: list[tuple[str, str]]  # (id, name in Organizations)
    friendly: dict[str, str]  # the policy's [accounts]
    permission_sets: list[str]
    users: list[tuple[str, str]]  # (Slack user id, Identity Center user name = e-mail)
    rules: list[Rule]
    ps_arns: dict[str, str] = field(default_factory=dict)  # name → ARN, once created
    user_ids: dict[str, str] = field(default_factory=dict)  # user name → Identity Store id

    def rule_of(self, account: str, ps_name: str) -> str:
        """The allow rule a request for the pair is granted by (explicit rules come first)."""
        for r in self.rules:
            if account in r.accounts and ps_name in r.permission_sets:
                return r.name
        return SCALE_RULE

    def explicit_pairs(self, remove: bool | None = None) -> list[tuple[str, str]]:
        return [(a, p) for r in self.rules if remove is None or r.remove == remove
                for a in r.accounts for p in r.permission_sets]


def make_org(accounts: int, permission_sets: int) -> Org:
    if permission_sets > len(PERMISSION_SETS):
        raise ScaleError(f"at most {len(PERMISSION_SETS)} permission sets")
    if accounts < EXPLICIT_RULES * EXPLICIT_ACCOUNTS_PER_RULE:
        raise ScaleError(f"at least {EXPLICIT_RULES * EXPLICIT_ACCOUNTS_PER_RULE} accounts")
    ids = [f"{FIRST_ACCOUNT + i:012d}" for i in range(accounts)]
    named = [(a, f"{TEAMS[i % len(TEAMS)]}-{STAGES[(i // len(TEAMS)) % len(STAGES)]}-{i // 100:02d}")
             for i, a in enumerate(ids)]
    sets = PERMISSION_SETS[:permission_sets]
    per = EXPLICIT_SETS_PER_RULE
    rules = [
        Rule(
            name=f"scale-explicit-{k:02d}",
            accounts=ids[k * EXPLICIT_ACCOUNTS_PER_RULE:(k + 1) * EXPLICIT_ACCOUNTS_PER_RULE],
            permission_sets=[sets[(k * per + j) % len(sets)] for j in range(per)],
            remove=k >= EXPLICIT_RULES - REMOVE_RULES,
        )
        for k in range(EXPLICIT_RULES)
    ]
    explicit = {a for r in rules for a in r.accounts}
    friendly = {a: f"{name.split('-')[0].title()} {name.split('-')[1]} {i:03d}"
                for i, (a, name) in enumerate(named) if a in explicit}
    users = [(f"U0SCALE{i:04d}", f"scale{i:04d}@example.com") for i in range(1, USERS + 1)]
    return Org(named, friendly, sets, users, rules)


def policy_text(org: Org) -> str:
    """The stack's example policy with its permission sets named (their ARNs are only known
    once the stack has seeded them), with the organization's friendly names and rules."""
    example = stk.policy_toml(
        "BreakGlassAdmin",
        "1h",
        gated_permission_set_arn="BreakGlassGated",
        secondary_gated_permission_set_arn="BreakGlassSecondary",
        incident_gated_permission_set_arn="BreakGlassIncident",
    )
    anchor = f'[accounts]\n"{stk.ACCOUNT_ID}" = "production"\n'
    if anchor not in example or "\n[reconcile]\n" not in example:
        raise ScaleError("testbed/stack.py's example policy changed shape: adapt policy_text()")
    names = "".join(f'"{a}" = "{n}"\n' for a, n in org.friendly.items())
    example = example.replace(anchor, anchor + names)
    def quoted(values: list[str]) -> str:
        return ", ".join(f'"{v}"' for v in values)

    slack = quoted([stk.USERS[0][0]] + [u for u, _ in org.users])
    rules = []
    for r in org.rules:
        rules.append(f"""[[rule]]
name = "{r.name}"
effect = "allow"
slack_users = [{slack}]
accounts = [{quoted(r.accounts)}]
permission_sets = [{quoted(r.permission_sets)}]
default_duration = "1h"
max_duration = "4h"
notify_channel = "{stk.NOTIFY_CHANNEL}"
standing_access = "{'remove' if r.remove else 'warn'}"
""")
    rules.append(f"""# Every account of the organization, every scale permission set.
[[rule]]
name = "{SCALE_RULE}"
effect = "allow"
slack_users = [{slack}]
accounts = ["*"]
permission_sets = [{quoted(org.permission_sets)}]
default_duration = "1h"
max_duration = "4h"
notify_channel = "{stk.NOTIFY_CHANNEL}"
""")
    users = "".join(f'{u} = "{e}"\n' for u, e in org.users)
    example = example.replace("[users]\n", "[users]\n" + users, 1)
    ours = "\n# Written by testbed/scale.py.\n" + "".join(rules) + "[reconcile]\n"
    return example.replace("\n[reconcile]\n", ours, 1)


# ------------------------------------------------------------------ items, as the binary writes them


def rfc3339(t: datetime) -> str:
    """src/time_util.rs rfc3339: UTC, whole seconds, Z."""
    return t.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_of(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d")


def request_id(*parts: Any) -> str:
    """`bg-` and 24 hex digits (src/domain RequestId), derived from `parts`."""
    return "bg-" + hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]


def S(v: str) -> dict[str, str]:  # noqa: N802 (DynamoDB's type letters)
    return {"S": v}


def N(v: int) -> dict[str, str]:  # noqa: N802
    return {"N": str(v)}


def B(v: bool) -> dict[str, bool]:  # noqa: N802
    return {"BOOL": v}


@dataclass
class Req:
    """One request to seed (what the webhook and the worker would have recorded)."""

    id: str
    user: tuple[str, str]  # (Slack id, user name)
    principal: str
    account: str
    ps_name: str
    ps_arn: str
    rule: str
    requested_at: datetime
    duration: int = 3600
    max_duration: int = 4 * 3600


def request_item(r: Req, status: str, version: int, **times: datetime) -> dict[str, Any]:
    """The request item (src/aws/store/requests.rs to_item) after its transitions up to
    `status`; `times` are granted_at, expires_at, revoked_at, reported_at, … as set."""
    item: dict[str, Any] = {
        "pk": S(r.id), "sk": S("request"), "status": S(status), "version": N(version),
        "team_id": S(stk.SLACK_TEAM_ID), "slack_user_id": S(r.user[0]), "sso_user_name": S(r.user[1]),
        "account_id": S(r.account), "permission_set_arn": S(r.ps_arn),
        "duration_secs": N(r.duration), "rule": S(r.rule), "max_duration_secs": N(r.max_duration),
        "requested_at": S(rfc3339(r.requested_at)), "day": S(day_of(r.requested_at)),
        "end_sessions": B(False), "reason": S("scale: investigating an incident"),
        "notify_channel": S(stk.NOTIFY_CHANNEL),
        "preexisting": B(False), "shared": B(False),
        "permission_set_name": S(r.ps_name), "principal_id": S(r.principal),
        "creation_request_id": S(str(uuid.UUID(r.id[3:].ljust(32, "0")))),
        "thread_ts": S(f"{int(r.requested_at.timestamp())}.000100"),
    }
    for name, t in times.items():
        item[name] = S(rfc3339(t))
    return item


# (version, event, actor) of a request's audit trail, as the binary writes it: version 7 is
# the Hold's token, stored without an audit entry.
GRANTED_TRAIL = [(1, "requested", None), (2, "granting", WORKER_ACTOR), (3, "lease_joined", WORKER_ACTOR),
                 (4, "creating", WORKER_ACTOR), (5, "assignment_requested", WORKER_ACTOR),
                 (6, "granted", WORKER_ACTOR)]
REPORTED_TRAIL = GRANTED_TRAIL + [(8, "revoked", WORKER_ACTOR), (9, "reported", WORKER_ACTOR),
                                  (10, "review_requested", WORKER_ACTOR), (11, "reviewed", stk.REVIEWER)]


def audit_items(r: Req, trail: list[tuple[int, str, str | None]], start: datetime) -> list[dict[str, Any]]:
    """The audit rows (requests.rs audit_item): `pk = <request id>`, `sk = audit#<version:06>`."""
    return [
        {"pk": S(r.id), "sk": S(f"audit#{v:06d}"), "event": S(event), "actor": S(actor or r.user[0]),
         "detail": S(f"{AUDIT_DETAIL}: {event}"), "at": S(rfc3339(start + timedelta(seconds=2 * i)))}
        for i, (v, event, actor) in enumerate(trail)
    ]


def lease_key(principal: str, account: str, ps_arn: str) -> str:
    """src/domain/lease.rs Lease::key."""
    return f"lease#{principal}#{account}#{ps_arn}"


def lease_item(principal: str, account: str, ps_arn: str, holders: list[str]) -> dict[str, Any]:
    """A provisioned lease (leases.rs lease_put): created at version 1, marked provisioned at 2."""
    return {"pk": S(lease_key(principal, account, ps_arn)), "sk": S("lease"),
            "holders": {"L": [S(h) for h in holders]}, "standing": B(False), "releasing": B(False),
            "provisioned": B(True), "live": S("lease"), "version": N(2)}


def intent_item(principal: str, account: str, ps_arn: str, rid: str, at: datetime) -> dict[str, Any]:
    """The creation intent (requests.rs intend_creation): `pk = created#<key>`."""
    return {"pk": S(f"created#{principal}#{account}#{ps_arn}"), "sk": S("intent"),
            "request_id": S(rid), "at": S(rfc3339(at)), "live": S("intent")}


def historical_items(r: Req, rng: random.Random) -> list[dict[str, Any]]:
    """A request long over: granted, revoked, reported and reviewed, with its audit rows."""
    t0 = r.requested_at
    granted = t0 + timedelta(seconds=5)
    expires = granted + timedelta(seconds=r.duration)
    reported = expires + timedelta(seconds=905)
    reviewed = reported + timedelta(minutes=rng.randint(5, 600))
    item = request_item(r, "reported", 11, granted_at=granted, expires_at=expires, revoked_at=expires,
                        reported_at=reported, after_end_checked_at=reported + timedelta(hours=1),
                        review_requested_at=reported, reviewed_at=reviewed)
    events = rng.randint(0, 40)
    item["digest"] = S(json.dumps({"events": events, "flags": [0, 0, events // 10, events // 4],
                                   "top": ["s3:ListBuckets", "ec2:DescribeInstances"][: min(events, 2)],
                                   "left_behind": 0, "after_end": 0, "mailed_to": stk.RECIPIENTS}))
    item.update(review_channel=S(stk.REVIEW_CHANNEL), review_ts=S(f"{int(reported.timestamp())}.000200"),
                review_outcome=S("follow_up" if rng.random() < 0.05 else "fine"), reviewed_by=S(stk.REVIEWER))
    return [item] + audit_items(r, REPORTED_TRAIL, t0)


# ------------------------------------------------------------------ talking to the stack


def http(method: str, url: str, body: Any = None, timeout: float = 600) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        raise ScaleError(f"{method} {url}: HTTP {e.code}: {e.read()[:500].decode('utf-8', 'replace')}") from e


class Clock:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self.phases: list[tuple[str, float]] = []

    def say(self, what: str) -> None:
        print(f"[{time.monotonic() - self.start:7.1f}s] {what}", flush=True)

    def phase(self, name: str) -> "Phase":
        return Phase(self, name)


class Phase:
    def __init__(self, clock: Clock, name: str) -> None:
        self.clock, self.name = clock, name

    def __enter__(self) -> "Phase":
        self.started = time.monotonic()
        self.clock.say(f"{self.name} ...")
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        took = time.monotonic() - self.started
        self.clock.phases.append((self.name + ("" if kind is None else " (failed)"), took))
        self.clock.say(f"{self.name}: {'done' if kind is None else 'FAILED'} in {took:.1f}s")


def start_stack(binary: Path, policy: Path, calls_per_second: float) -> tuple[subprocess.Popen, dict[str, str]]:
    env_file = OUT_DIR / "env"
    env_file.unlink(missing_ok=True)
    log = open(OUT_DIR / "stack.log", "w")
    env = dict(os.environ,
               IDENTITY_CENTER_CALLS_PER_SECOND=f"{calls_per_second:g}",
               # moto's slowest answers at a million items take seconds, not milliseconds.
               AWS_CALL_TIMEOUT_SECONDS="60")
    proc = subprocess.Popen(
        [sys.executable, str(stk.TESTBED / "stack.py"), "--env-file", str(env_file), "--binary", str(binary),
         "--policy", str(policy), "--instances", "2"],
        cwd=stk.REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches us only; we stop the stack
    )
    deadline = time.monotonic() + 120
    while not env_file.exists():
        if proc.poll() is not None:
            raise ScaleError(f"the stack exited ({proc.returncode}) before it was ready:\n"
                             + stk.tail(OUT_DIR / "stack.log"))
        if time.monotonic() > deadline:
            raise ScaleError("the stack was not ready within 120 s (target/scale/stack.log)")
        time.sleep(0.2)
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return proc, values


def stop_stack(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# ------------------------------------------------------------------ seeding


def seed_organization(env: dict[str, str], org: Org, clock: Clock) -> None:
    """Organizations: moto's CreateAccount through the test bed (ids chosen, as the policy
    names them), in batches."""
    stk.aws_client("organizations", env["MOTO_URL"]).create_organization(FeatureSet="ALL")
    started = time.monotonic()
    batch = 100
    for i in range(0, len(org.accounts), batch):
        chunk = [{"id": a, "name": n, "email": f"aws+{a}@example.com"} for a, n in org.accounts[i:i + batch]]
        http("POST", f"{env['MOTO_URL']}/_testbed/organizations/accounts", {"accounts": chunk})
    took = time.monotonic() - started
    listed = sum(len(p["Accounts"]) for p in stk.aws_client("organizations", env["MOTO_URL"])
                 .get_paginator("list_accounts").paginate())
    if listed != len(org.accounts) + 1:
        raise ScaleError(f"ListAccounts lists {listed} accounts, not {len(org.accounts)} + the management account")
    clock.say(f"  {len(org.accounts)} accounts in {took:.1f}s ({1000 * took / len(org.accounts):.1f} ms each); "
              f"ListAccounts lists {listed}")


def seed_identity(env: dict[str, str], org: Org, clock: Clock) -> None:
    sso = stk.aws_client("sso-admin", env["MOTO_URL"])
    for name in org.permission_sets:
        ps = sso.create_permission_set(InstanceArn=env["SSO_INSTANCE_ARN"], Name=name,
                                       Description=f"scale: {name}", SessionDuration="PT1H")
        org.ps_arns[name] = ps["PermissionSet"]["PermissionSetArn"]
    ids = stk.aws_client("identitystore", env["MOTO_URL"])
    for _, email, _, _ in stk.USERS[:2]:  # the stack's alice and bob have a history too
        org.user_ids[email] = ids.get_user_id(
            IdentityStoreId=env["IDENTITY_STORE_ID"],
            AlternateIdentifier={"UniqueAttribute": {"AttributePath": "userName", "AttributeValue": email}})["UserId"]
    for _, email in org.users:
        user = email.split("@")[0]
        org.user_ids[email] = ids.create_user(
            IdentityStoreId=env["IDENTITY_STORE_ID"], UserName=email, DisplayName=f"Scale {user}",
            Name={"GivenName": "Scale", "FamilyName": user},
            Emails=[{"Value": email, "Type": "work", "Primary": True}])["UserId"]
    clock.say(f"  {len(org.permission_sets)} permission sets, {len(org.users)} users")


def put_items(env: dict[str, str], items: list[dict[str, Any]]) -> None:
    http("POST", f"{env['MOTO_URL']}/_testbed/dynamodb/items", {"table": env["TABLE_NAME"], "items": items})


def assign(env: dict[str, str], account: str, ps_arn: str, principal: str) -> None:
    stk.aws_client("sso-admin", env["MOTO_URL"]).create_account_assignment(
        InstanceArn=env["SSO_INSTANCE_ARN"], TargetId=account, TargetType="AWS_ACCOUNT",
        PermissionSetArn=ps_arn, PrincipalType="USER", PrincipalId=principal)


@dataclass
class Live:
    leases: list[Req]
    orphans: list[Req]
    standing: list[tuple[str, str, str]]  # (account, ps arn, principal)


def pick_live(org: Org, leases: int, orphans: int, standing: int, rng: random.Random) -> Live:
    """Distinct (user, account, permission set) triples: a third of the leases on explicitly
    named pairs, the rest (and the orphans) anywhere; standing access on pairs whose rules keep
    it."""
    taken: set[tuple[str, str, str]] = set()
    explicit, warn = org.explicit_pairs(), org.explicit_pairs(remove=False)
    now = datetime.now(timezone.utc)

    def triple(pairs: list[tuple[str, str]] | None) -> tuple[tuple[str, str], str, str]:
        while True:
            user = rng.choice(org.users)
            if pairs:
                account, ps = rng.choice(pairs)
            else:
                account, ps = rng.choice(org.accounts)[0], rng.choice(org.permission_sets)
            if (user[1], account, ps) not in taken:
                taken.add((user[1], account, ps))
                return user, account, ps

    def req(kind: str, i: int, pairs: list[tuple[str, str]] | None) -> Req:
        user, account, ps = triple(pairs)
        return Req(request_id("scale", kind, i), user, org.user_ids[user[1]], account, ps, org.ps_arns[ps],
                   org.rule_of(account, ps), now - timedelta(minutes=rng.randint(5, 50)))

    lease_reqs = [req("lease", i, explicit if i < leases // 3 else None) for i in range(leases)]
    orphan_reqs = [req("orphan", i, None) for i in range(orphans)]
    standing_triples = []
    for _ in range(standing):
        user, account, ps = triple(warn)
        standing_triples.append((account, org.ps_arns[ps], org.user_ids[user[1]]))
    return Live(lease_reqs, orphan_reqs, standing_triples)


def seed_live(env: dict[str, str], live: Live, clock: Clock, timeout: float) -> None:
    """Leases (with their requests, audit rows, intents and assignments), each held by a
    RUNNING execution of the real state machine waiting in Hold; orphans; standing access."""
    now = datetime.now(timezone.utc)
    items: list[dict[str, Any]] = []
    for r in live.leases:
        granted = r.requested_at + timedelta(seconds=5)
        r.duration = 4 * 3600
        items.append(request_item(r, "granted", 6, granted_at=granted, expires_at=now + timedelta(hours=3)))
        items += audit_items(r, GRANTED_TRAIL, r.requested_at)
        items.append(lease_item(r.principal, r.account, r.ps_arn, [r.id]))
        items.append(intent_item(r.principal, r.account, r.ps_arn, r.id, r.requested_at + timedelta(seconds=3)))
    for r in live.orphans:
        granted = r.requested_at + timedelta(seconds=5)
        # Revoked while its lease and assignment stayed behind (a revoke that died half-way).
        items.append(request_item(r, "revoked", 8, granted_at=granted, expires_at=now - timedelta(minutes=1),
                                  revoked_at=now - timedelta(minutes=1)))
        items += audit_items(r, GRANTED_TRAIL + [(8, "revoked", WORKER_ACTOR)], r.requested_at)
        items.append(lease_item(r.principal, r.account, r.ps_arn, [r.id]))
        items.append(intent_item(r.principal, r.account, r.ps_arn, r.id, r.requested_at + timedelta(seconds=3)))
    put_items(env, items)
    for r in live.leases + live.orphans:
        assign(env, r.account, r.ps_arn, r.principal)
    for account, ps_arn, principal in live.standing:
        assign(env, account, ps_arn, principal)
    clock.say(f"  {len(items)} items, {len(live.leases) + len(live.orphans) + len(live.standing)} assignments")

    # The executions: the Grant task finds each request granted and hands its lease state to
    # Hold, whose task stores the callback token on the request (version 7) and waits. A few
    # at a time: `cargo lambda watch` stops handing out invocations when hundreds wait at once.
    sfn = stk.aws_client("stepfunctions", env["MOTO_URL"])
    deadline = time.monotonic() + timeout
    held = 0
    for i in range(0, len(live.leases), EXECUTIONS_AT_ONCE):
        batch = live.leases[i:i + EXECUTIONS_AT_ONCE]
        for r in batch:
            sfn.start_execution(stateMachineArn=env["STATE_MACHINE_ARN"], name=r.id,
                                input=json.dumps({"request_id": r.id, "cloudtrail_delay_seconds": 900}))
        wait_for_holds(env, sfn, [r.id for r in batch], deadline, timeout)
        held += len(batch)
        if held % 100 < EXECUTIONS_AT_ONCE or held == len(live.leases):
            clock.say(f"  executions holding: {held}/{len(live.leases)}")
    running = sum(1 for page in sfn.get_paginator("list_executions").paginate(
        stateMachineArn=env["STATE_MACHINE_ARN"], statusFilter="RUNNING") for _ in page["executions"])
    if running < len(live.leases):
        raise ScaleError(f"only {running} of {len(live.leases)} executions are RUNNING")
    clock.say(f"  {running} executions RUNNING, each waiting in Hold")


EXECUTIONS_AT_ONCE = 20


def wait_for_holds(env: dict[str, str], sfn: Any, ids: list[str], deadline: float, timeout: float) -> None:
    """Until each request's Hold has stored its token."""
    ddb = stk.aws_client("dynamodb", env["MOTO_URL"])
    waiting = set(ids)
    while waiting:
        keys = [{"pk": S(rid), "sk": S("request")} for rid in sorted(waiting)]
        got = ddb.batch_get_item(RequestItems={env["TABLE_NAME"]: {
            "Keys": keys, "ProjectionExpression": "pk, hold_token"}})["Responses"][env["TABLE_NAME"]]
        waiting -= {g["pk"]["S"] for g in got if "hold_token" in g}
        if not waiting:
            return
        if time.monotonic() > deadline:
            sample = sorted(waiting)[:3]
            arn = env["STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:")
            states = {rid: sfn.describe_execution(executionArn=f"{arn}:{rid}")["status"] for rid in sample}
            raise ScaleError(f"{len(waiting)} executions did not reach Hold within {timeout:.0f}s (e.g. {states})")
        time.sleep(0.25)


def history_chunks(org: Org, count: int, rng: random.Random, chunk: int) -> Iterator[list[dict[str, Any]]]:
    """Historical requests over the past year, `chunk` requests (with their audit rows) at a time."""
    now = datetime.now(timezone.utc)
    people = org.users + [(uid, email) for uid, email, _, _ in stk.USERS[:2]]
    explicit = org.explicit_pairs()
    for start in range(0, count, chunk):
        items: list[dict[str, Any]] = []
        for i in range(start, min(count, start + chunk)):
            user = rng.choice(people)
            if rng.random() < 0.3:
                account, ps = rng.choice(explicit)
            else:
                account, ps = rng.choice(org.accounts)[0], rng.choice(org.permission_sets)
            r = Req(request_id("scale", "history", i), user, org.user_ids[user[1]], account, ps, org.ps_arns[ps],
                    org.rule_of(account, ps), now - timedelta(days=2, seconds=rng.randint(0, 363 * 86400)),
                    duration=rng.choice([1800, 3600, 3600, 7200, 14400]))
            items += historical_items(r, rng)
        yield items


def seed_history(env: dict[str, str], org: Org, count: int, clock: Clock, rng: random.Random) -> int:
    """Historical requests and their audit rows, two requests of items in flight at a time."""
    total, done, next_report = 0, 0, 0.1
    chunk = 2000
    with ThreadPoolExecutor(2) as pool:
        pending = []
        for items in history_chunks(org, count, rng, chunk):
            pending.append((pool.submit(put_items, env, items), len(items)))
            while len(pending) >= 2:
                future, size = pending.pop(0)
                future.result()
                done, total = done + chunk, total + size
                if done >= next_report * count:
                    clock.say(f"  history: {min(done, count)}/{count} requests ({total} items)")
                    next_report += 0.1
        for future, size in pending:
            future.result()
            total += size
    clock.say(f"  history: {count} requests, {total} items")
    return total


def emulator_baseline(env: dict[str, str], some_request: str) -> dict[str, float]:
    """What moto takes for one GetItem of a request and one keys-only Query of the `live`
    index at this table size (median of a few, milliseconds, boto3 included): most of a
    reconcile run's duration is its calls times these."""
    ddb = stk.aws_client("dynamodb", env["MOTO_URL"])

    def timed(call: Any, times: int) -> float:
        took = []
        for _ in range(times):
            started = time.perf_counter()
            call()
            took.append(1000 * (time.perf_counter() - started))
        return statistics.median(took)

    return {
        "GetItem (a request)": timed(lambda: ddb.get_item(
            TableName=env["TABLE_NAME"], Key={"pk": S(some_request), "sk": S("request")}), 9),
        "Query of the live index (keys only)": timed(lambda: ddb.query(
            TableName=env["TABLE_NAME"], IndexName="live", KeyConditionExpression="live = :k",
            ExpressionAttributeValues={":k": S("lease")}), 3),
    }


# ------------------------------------------------------------------ measuring


def invoke_worker(env: dict[str, str], payload: dict[str, Any]) -> tuple[int, Any]:
    url = f"{env['LAMBDA_ENDPOINT_URL']}/2015-03-31/functions/{env['WORKER_FUNCTION']}/invocations"
    req = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=900) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, body.decode("utf-8", "replace")


@dataclass
class ReconcileFigures:
    runs: list[float] = field(default_factory=list)  # seconds, run by run
    run_calls: list[int] = field(default_factory=list)  # AWS calls, run by run
    run_counts: list[dict[str, int]] = field(default_factory=list)  # the summary's counts, run by run
    pairs_checked: int = 0  # the sweeps' pairs_checked, summed
    calls: Counter = field(default_factory=Counter)  # AWS calls by API, all runs
    calls_capped: bool = False
    reads: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    sweep: dict[str, Any] | None = None  # the last run's
    problems: list[str] = field(default_factory=list)

    def total(self, count: str) -> int:
        return sum(c.get(count, 0) for c in self.run_counts)


def measure_reconcile(env: dict[str, str], clock: Clock, max_runs: int, deadline: float) -> ReconcileFigures:
    """Reconcile until the sweep is complete; the calls and reads of these runs only."""
    moto = env["MOTO_URL"]
    http("DELETE", f"{moto}/_testbed/calls")
    http("DELETE", f"{moto}/_testbed/dynamodb/reads")
    figures = ReconcileFigures()
    for run in range(1, max_runs + 1):
        started = time.monotonic()
        status, summary = invoke_worker(env, {"type": "reconcile"})
        took = time.monotonic() - started
        figures.runs.append(took)
        calls = http("GET", f"{moto}/_testbed/calls")
        http("DELETE", f"{moto}/_testbed/calls")
        figures.calls_capped |= len(calls) >= 10_000  # the call log keeps the last 10,000
        figures.calls.update(c["operation"] for c in calls)
        figures.run_calls.append(len(calls))
        if status != 200 or not isinstance(summary, dict) or "errorType" in summary:
            figures.problems.append(f"reconcile run {run}: HTTP {status}: {str(summary)[:500]}")
            break
        figures.run_counts.append({k: int(v) for k, v in (summary.get("counts") or {}).items()})
        figures.errors += [str(e) for e in summary.get("errors") or []]
        figures.sweep = summary.get("sweep")
        sweep = figures.sweep or {}
        figures.pairs_checked += int(sweep.get("pairs_checked") or 0)
        where = (f"sweep {sweep.get('pairs_checked')}/{sweep.get('pairs_total')} pairs, "
                 f"complete={sweep.get('complete')}" if figures.sweep is not None else "no sweep (one run covers all)")
        clock.say(f"  run {run}: {took:.1f}s, {len(calls)} AWS calls, counts {summary.get('counts')}, {where}")
        if figures.sweep is None or sweep.get("complete"):
            break
        if time.monotonic() > deadline:
            figures.problems.append(f"the sweep was not complete after {run} runs and the time allowed")
            break
    else:
        figures.problems.append(f"the sweep was not complete after {max_runs} runs")
    figures.reads = http("GET", f"{moto}/_testbed/dynamodb/reads")
    if figures.errors:
        figures.problems.append(
            f"the reconciler reported {len(figures.errors)} error(s), e.g. {figures.errors[0][:300]}")
    if figures.total("failed"):
        figures.problems.append(f"the reconciler failed on {figures.total('failed')} assignment(s)")
    return figures


def check_assignments(env: dict[str, str], live: Live) -> list[str]:
    """What every reconciler must have done: kept the live leases and the standing access
    (warn), revoked the orphans."""
    sso = stk.aws_client("sso-admin", env["MOTO_URL"])
    cache: dict[tuple[str, str], set[str]] = {}

    def assigned(account: str, ps_arn: str) -> set[str]:
        if (account, ps_arn) not in cache:
            cache[(account, ps_arn)] = {
                a["PrincipalId"] for page in sso.get_paginator("list_account_assignments").paginate(
                    InstanceArn=env["SSO_INSTANCE_ARN"], AccountId=account, PermissionSetArn=ps_arn)
                for a in page["AccountAssignments"]}
        return cache[(account, ps_arn)]

    problems = []
    gone = [r.id for r in live.leases if r.principal not in assigned(r.account, r.ps_arn)]
    if gone:
        problems.append(f"{len(gone)} live lease(s) lost their assignment, e.g. {gone[:3]}")
    left = [r.id for r in live.orphans if r.principal in assigned(r.account, r.ps_arn)]
    if left:
        problems.append(f"{len(left)} orphan(s) still assigned: {left}")
    removed = sum(1 for a, p, u in live.standing if u not in assigned(a, p))
    if removed:
        problems.append(f"{removed} standing assignment(s) under warn rules were removed")
    return problems


def suggestion_payload(env: dict[str, str], picker: str, typed: str, account: tuple[str, str] | None) -> dict[str, Any]:
    """A Slack `block_suggestion` of the request modal's `account` or `permission_set` picker."""
    values: dict[str, Any] = {}
    if account is not None:
        values = {"account": {"account": {"type": "external_select", "selected_option": {
            "text": {"type": "plain_text", "text": f"{account[1]} ({account[0]})"}, "value": account[0]}}}}
    return {
        "type": "block_suggestion", "team": {"id": env["SLACK_TEAM_ID"]}, "user": {"id": env["EXAMPLE_SLACK_USER_ID"]},
        "api_app_id": env["SLACK_API_APP_ID"], "action_id": picker, "block_id": picker, "value": typed,
        "view": {"id": "VSCALE1", "type": "modal", "callback_id": MODAL_CALLBACK, "private_metadata": "{}",
                 "state": {"values": values}},
    }


def typed_texts(org: Org, count: int, rng: random.Random) -> list[tuple[str, str, tuple[str, str] | None]]:
    """(picker, typed text, account chosen): half account-name fragments, a quarter account-id
    prefixes, a quarter permission-set fragments (with an account chosen)."""
    out = []
    for i in range(count):
        kind = i % 4
        account = rng.choice(org.accounts)
        if kind in (0, 1):
            name = account[1] if kind == 0 or account[0] not in org.friendly else org.friendly[account[0]]
            start = rng.randint(0, max(0, len(name) - 3))
            out.append(("account", name[start:start + rng.randint(2, 8)], None))
        elif kind == 2:
            out.append(("account", account[0][: rng.randint(4, 12)], None))
        else:
            ps = rng.choice(org.permission_sets)
            start = rng.randint(0, max(0, len(ps) - 3))
            out.append(("permission_set", ps[start:start + rng.randint(2, 6)], account))
    return out


@dataclass
class SuggestFigures:
    latencies_ms: list[float] = field(default_factory=list)
    options: list[int] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    unanswered: list[str] = field(default_factory=list)  # answers that were no {"options": [...]}


def post_suggestion(env: dict[str, str], payload: dict[str, Any]) -> tuple[int, str, float]:
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    req = urllib.request.Request(env["WEBHOOK_URL"], body, signed_headers(env["SLACK_SIGNING_SECRET"], body))
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, text = resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode("utf-8", "replace")
    return status, text, 1000 * (time.perf_counter() - started)


def measure_suggestions(env: dict[str, str], org: Org, count: int, clock: Clock, rng: random.Random) -> SuggestFigures:
    figures = SuggestFigures()
    texts = typed_texts(org, count + 5, rng)
    for picker, typed, account in texts[:5]:  # warm-ups: caches, connections
        post_suggestion(env, suggestion_payload(env, picker, typed, account))
    for picker, typed, account in texts[5:]:
        status, text, ms = post_suggestion(env, suggestion_payload(env, picker, typed, account))
        figures.statuses[status] += 1
        figures.latencies_ms.append(ms)
        try:
            options = json.loads(text).get("options") if status == 200 else None
        except (ValueError, AttributeError):
            options = None
        if isinstance(options, list):
            figures.options.append(len(options))
        elif len(figures.unanswered) < 3:
            figures.unanswered.append(f"{picker} {typed!r}: HTTP {status} {text[:200]!r}")
    if figures.unanswered:
        clock.say(f"  the webhook did not answer with options ({len(figures.latencies_ms) - len(figures.options)} "
                  f"of {len(figures.latencies_ms)}), e.g. {figures.unanswered[0]}")
    return figures


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(-(-p * len(ordered) // 100)) - 1))]


# ------------------------------------------------------------------ the figures


def figures_text(args: argparse.Namespace, clock: Clock, seeded: dict[str, Any], baseline: dict[str, float],
                 rec: ReconcileFigures | None, sug: SuggestFigures | None, problems: list[str]) -> str:
    lines = [f"break-glass scale figures ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, binary {args.binary}, "
             f"IDENTITY_CENTER_CALLS_PER_SECOND={args.calls_per_second:g})", ""]
    lines.append("seeded: " + ", ".join(f"{k} {v}" for k, v in seeded.items()))
    lines.append("")
    lines.append("phases (seconds):")
    lines += [f"  {name:<44} {took:8.1f}" for name, took in clock.phases]
    lines.append(f"  {'total':<44} {time.monotonic() - clock.start:8.1f}")
    if baseline:
        lines.append("moto at this table size (ms, median; the emulator, not the design): "
                     + ", ".join(f"{k} {v:.1f}" for k, v in baseline.items()))
    if rec is not None:
        lines.append("")
        lines.append(f"reconcile: {len(rec.runs)} run(s), {sum(rec.runs):.1f} s in all")
        for i, took in enumerate(rec.runs):
            counts = rec.run_counts[i] if i < len(rec.run_counts) else {}
            lines.append(f"  run {i + 1}: {took:6.1f} s, {rec.run_calls[i]:6d} AWS calls; "
                         + ", ".join(f"{k} {v}" for k, v in counts.items()))
        if rec.sweep is not None:
            lines.append(f"  sweep: {rec.pairs_checked} pairs checked in all; the last run's: " + json.dumps(rec.sweep))
        else:
            lines.append("  sweep: none in the summary (this binary covers everything in one run)")
        lines.append("  revoked, removed, failed (all runs): "
                     f"{rec.total('revoked')}, {rec.total('removed')}, {rec.total('failed')}")
        total = sum(rec.calls.values())
        capped = ", at least: the call log keeps 10,000 a run" if rec.calls_capped else ""
        lines.append(f"  AWS calls by API ({total} in all{capped}):")
        lines += [f"    {op:<44} {n:8d}" for op, n in rec.calls.most_common()]
        lines.append("  DynamoDB reads (calls, items returned, items evaluated = what DynamoDB bills):")
        by = rec.reads.get("by_operation_index", {})
        for op, n in sorted(rec.reads.get("calls", {}).items()):
            if op in ("Query", "Scan"):
                for key, v in sorted(by.items()):
                    if key.startswith(op + " "):
                        lines.append(f"    {key:<30} calls {v.get('calls', 0):7d}  items {v.get('items', 0):9d}  "
                                     f"evaluated {v.get('scanned', 0):9d}")
            else:
                items = rec.reads.get("items", {}).get(op, 0)
                lines.append(f"    {op:<30} calls {n:7d}  items {items:9d}  evaluated {items:9d}")
        lines.append(f"    {'all':<30} calls {sum(rec.reads.get('calls', {}).values()):7d}  "
                     f"items {sum(rec.reads.get('items', {}).values()):9d}  "
                     f"evaluated {sum(rec.reads.get('scanned', {}).values()):9d}")
    if sug is not None:
        lines.append("")
        if sug.latencies_ms:
            ms = sug.latencies_ms
            lines.append(f"type-ahead: {len(ms)} suggestions, p50 {statistics.median(ms):.1f} ms, "
                         f"p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms; HTTP {dict(sug.statuses)}")
        if sug.options:
            lines.append(f"  options returned: min {min(sug.options)}, median {statistics.median(sug.options):g}, "
                         f"max {max(sug.options)}; answered with options: {len(sug.options)}/{len(sug.latencies_ms)}")
        else:
            lines.append("  no answer carried options: this binary does not serve the type-ahead "
                         f"(e.g. {sug.unanswered[0] if sug.unanswered else 'no answer'})")
    lines.append("")
    lines.append("measure the design: AWS calls, DynamoDB calls and items, runs per sweep, counts. "
                 "Durations measure mostly moto and the pace (docs/scale.md).")
    if problems:
        lines.append("")
        lines.append("FAILED:")
        lines += [f"  - {p}" for p in problems]
    else:
        lines.append("all checks passed")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ main


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=str(stk.REPO / "target" / "debug" / "break-glass"))
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--permission-sets", type=int, default=20)
    parser.add_argument("--history", type=int, default=100_000, help="historical requests")
    parser.add_argument("--leases", type=int, default=300, help="live leases, each with a running execution")
    parser.add_argument("--standing", type=int, default=50, help="standing assignments (kept: warn)")
    parser.add_argument("--orphans", type=int, default=5, help="leases of revoked requests still assigned")
    parser.add_argument("--suggestions", type=int, default=200)
    parser.add_argument("--calls-per-second", type=float, default=50.0,
                        help="IDENTITY_CENTER_CALLS_PER_SECOND of the reconciler (default 50, its maximum)")
    parser.add_argument("--max-runs", type=int, default=40, help="reconcile runs at most")
    parser.add_argument("--max-minutes", type=float, default=25.0,
                        help="stop starting reconcile runs past this (default 25)")
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)

    binary = Path(args.binary).resolve()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "figures.txt").unlink(missing_ok=True)
    clock = Clock()
    rng = random.Random(args.seed)
    problems: list[str] = []
    seeded: dict[str, Any] = {}
    baseline: dict[str, float] = {}
    rec: ReconcileFigures | None = None
    sug: SuggestFigures | None = None
    proc = None
    try:
        if not binary.is_file():
            raise ScaleError(f"{binary} not found: run `cargo build` first")
        org = make_org(args.accounts, args.permission_sets)
        policy = OUT_DIR / "policy.toml"
        policy.write_text(policy_text(org))
        check = subprocess.run([str(binary), "policy", "check", str(policy)], capture_output=True, text=True)
        if check.returncode != 0:
            raise ScaleError(f"the generated policy does not validate: {check.stdout}{check.stderr}")
        with clock.phase("start the local stack"):
            proc, env = start_stack(binary, policy, args.calls_per_second)
        with clock.phase("organization: accounts"):
            seed_organization(env, org, clock)
        with clock.phase("Identity Center: permission sets, users"):
            seed_identity(env, org, clock)
        live = pick_live(org, args.leases, args.orphans, args.standing, rng)
        with clock.phase("live leases, executions, orphans, standing"):
            seed_live(env, live, clock, timeout=600)
        with clock.phase("history: requests and audit rows"):
            items = seed_history(env, org, args.history, clock, rng)
        if live.leases:
            baseline = emulator_baseline(env, live.leases[0].id)
            clock.say("  moto at this size: " + ", ".join(f"{k} {v:.1f} ms" for k, v in baseline.items()))
        seeded = {"accounts": f"{len(org.accounts)} (+ the management account)",
                  "permission sets": len(org.permission_sets), "users": len(org.users),
                  "historical requests": f"{args.history} ({items} items)", "live leases": len(live.leases),
                  "orphans": len(live.orphans), "standing": len(live.standing),
                  "explicit pairs": len(org.explicit_pairs())}
        deadline = clock.start + 60 * args.max_minutes - 120
        with clock.phase("reconcile until the sweep is complete"):
            rec = measure_reconcile(env, clock, args.max_runs, deadline)
        problems += rec.problems
        problems += check_assignments(env, live)
        with clock.phase(f"type-ahead: {args.suggestions} suggestions"):
            sug = measure_suggestions(env, org, args.suggestions, clock, rng)
        if args.suggestions and len(sug.options) < len(sug.latencies_ms):
            problems.append(f"{len(sug.latencies_ms) - len(sug.options)} of {len(sug.latencies_ms)} suggestions "
                            "were not answered with options")
    except ScaleError as e:
        problems.append(str(e))
    except KeyboardInterrupt:
        problems.append("interrupted")
    except Exception as e:  # an AWS call or the network failed: say what, exit non-zero
        problems.append(f"{type(e).__name__}: {e}")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not skip the cleanup
        with clock.phase("stop the local stack"):
            stop_stack(proc)
    text = figures_text(args, clock, seeded, baseline, rec, sug, problems)
    (OUT_DIR / "figures.txt").write_text(text)
    print()
    print(text, end="")
    print(f"(also in {OUT_DIR / 'figures.txt'}; stack log {OUT_DIR / 'stack.log'}, binary logs {OUT_DIR / 'logs'}/)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
