"""The whole break-glass stack on 127.0.0.1, for `make dev`, `make demo` and the Rust tests.

    python testbed/stack.py --env-file target/dev/env [--binary PATH] [--instances N]
                            [--cloudtrail-delay-seconds S] [--duration D] [--no-binary]
                            [--hold-recheck-seconds S] [--approval-timeout D] [--policy FILE]

Starts moto (with testbed/motoext.py), the Slack fake, the PagerDuty and Opsgenie fakes
(testbed/oncallfake.py, each with a random API token) and `cargo lambda watch
--only-lambda-apis`; seeds moto (Identity Center users and permission sets, DynamoDB table,
SES identity, Slack and on-call secrets, the state machine); creates the Opsgenie schedule
with nobody on call (nobody is on call anywhere at start: tests PUT /_testbed/oncall);
writes `<envdir>/policy.toml` (rules `oncall` and `sre-readonly`, and the on-call gated
rules `oncall-gated` (PagerDuty, else approval), `secondary-gated` (PagerDuty levels 1-2,
else deny, allow when PagerDuty is unreachable) and `incident-gated` (Opsgenie, an
incident required, the approver when Opsgenie is unreachable)), unless `--policy FILE` names
the policy to use instead (read by the binary as it is; everything else is seeded as usual); starts N copies of the binary against the runtime API (on-call cache
off); then writes the env file (KEY=value lines, the README's `make dev`) and stays in the
foreground. SIGINT/SIGTERM stop everything and remove the
env file. A child that dies is reported with the tail of its log (`<envdir>/logs/`).

Importable: ``with Stack(env_file) as stack: stack.env["WEBHOOK_URL"]``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import boto3

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
TESTBED = REPO / "testbed"

ACCOUNT_ID = "123456789012"
# A second account, for requests over several accounts (the `multi-account` rule).
SECOND_ACCOUNT_ID = "210987654321"
REGION = "us-east-1"
FUNCTION = "break-glass"
TABLE_NAME = "break-glass"
SLACK_TEAM_ID = "T0TESTTEAM"
SLACK_API_APP_ID = "A0TESTAPP1"
SENDER = "break-glass@example.com"
RECIPIENTS = "security@example.com"
SECRET_NAME = "break-glass/slack"
USERS = [  # (Slack user id, SSO user name = e-mail, display name, Slack handle)
    ("U0ALICE0001", "alice@example.com", "Alice Example", "alice"),
    ("U0BOB00001", "bob@example.com", "Bob Example", "bob"),
    # More on-call engineers, so that concurrent tests each have a lease of their own.
    ("U0ERIN0001", "erin@example.com", "Erin Example", "erin"),
    ("U0FRANK001", "frank@example.com", "Frank Example", "frank"),
    ("U0GRACE001", "grace@example.com", "Grace Example", "grace"),
    ("U0HEIDI001", "heidi@example.com", "Heidi Example", "heidi"),
    ("U0IVAN0001", "ivan@example.com", "Ivan Example", "ivan"),
    ("U0JUDY0001", "judy@example.com", "Judy Example", "judy"),
    ("U0KEN00001", "ken@example.com", "Ken Example", "ken"),
    ("U0LEO00001", "leo@example.com", "Leo Example", "leo"),
]
# Identity Center users the policy does not map: found through their Slack e-mail.
EMAIL_USERS = [
    ("U0CAROL001", "carol@example.com", "Carol Example", "carol"),  # covered by Slack id
    ("U0DAVE0001", "dave@example.com", "Dave Example", "dave"),  # covered by the SRE group
]
GROUP = "SRE"  # dave is a member
ORG_WIDE_USER = "U0JUDY0001"  # also covered by a rule for every account of the organization
MULTI_ACCOUNT_USER = "U0KEN00001"  # also covered by a rule for two accounts in one request
# The report role break glass assumes in a target account other than its own (moto's STS
# hands out that account's credentials, so its CloudTrail is read as that account).
REPORT_ROLE_NAME = "break-glass-report-reader"
# Slack users that must be refused whatever the policy says.
REFUSED_SLACK_USERS = {
    "U0BOT00001": {"is_bot": True},
    "U0GUEST001": {"is_restricted": True},
    "U0GONE0001": {"deleted": True},
    "U0STRANGE1": {"team_id": "T0OTHERTEAM"},
}
NOTIFY_CHANNEL = "C0BREAKGLASS"
RECONCILE_CHANNEL = "C0RECONCILE"  # the reconciler's summaries
RESPONDER = "U0RESPOND1"  # may end or extend anyone's access
REVIEWER = "U0REVIEWR1"  # reviews uses (so may the responder, and the SRE group)
REVIEW_CHANNEL = "C0REVIEWS1"
ESCALATION_CHANNEL = "C0SECLEADS"
# On-call gating (testbed/oncallfake.py). Nobody is on call at start.
ONCALL_SECRET_NAME = "break-glass/oncall"
ONCALL_FROM = "break-glass@example.com"  # PagerDuty's From header for incident notes
ONCALL_SCHEDULE = "PBGSCHED1"  # PagerDuty: gates `oncall-gated`
SECONDARY_SCHEDULE = "PBGSCHED2"  # PagerDuty: gates `secondary-gated` (levels 1 and 2)
OPSGENIE_SCHEDULE = "6f1c3c1e-0000-4000-8000-00000000b6a1"  # gates `incident-gated`
APPROVER = "U0APPROVR1"  # approves `oncall-gated` requests (so does the SRE group)
# Slack users that are no Identity Center users (and not in the policy's [users]).
SLACK_ONLY_USERS = [(APPROVER, "approver@example.com", "Approver Example", "approver")]


STUB_MANIFEST = f"""# written by testbed/stack.py for `cargo lambda watch --only-lambda-apis`
[package]
name = "break-glass-runtime-stub"
version = "0.0.0"
edition = "2021"
publish = false

[[bin]]
name = "{FUNCTION}"
path = "src/main.rs"

[workspace]
"""


class StackError(Exception):
    """The stack could not start or a part of it died."""


# ------------------------------------------------------------------ processes


def _pdeathsig() -> None:
    """In the child, before exec: die with SIGTERM when the parent (this script) dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: best effort only
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_tcp(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Child:
    """One subprocess in its own process group, output appended to a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log: TextIO = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: Ctrl-C reaches us, we stop it
            preexec_fn=_pdeathsig,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready_line(self, deadline: float) -> int:
        """Wait for the 'READY port=N' line our Python servers print; returns N."""
        while time.monotonic() < deadline:
            match = re.search(r"^READY port=(\d+)$", self.log_path.read_text(errors="replace"), re.M)
            if match:
                return int(match.group(1))
            if not self.alive():
                break
            time.sleep(0.05)
        raise self.failure("did not become ready")

    def failure(self, what: str) -> StackError:
        code = self.proc.poll()
        status = "still running" if code is None else f"exit status {code}"
        return StackError(
            f"{self.name} {what} ({status}); last lines of {self.log_path}:\n{tail(self.log_path)}"
        )

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_children(children: list[Child], grace: float = 5.0) -> None:
    """SIGTERM every process group, SIGKILL what is left after `grace` seconds."""
    for child in children:
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for child in children:
        child.signal(signal.SIGKILL)  # the group may hold stragglers even if the leader exited
        if child.alive():
            child.proc.wait()
        child.log.close()


# ------------------------------------------------------------------ seeding


def aws_client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def http_json(method: str, url: str, body: Any = None) -> Any:
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def seed_aws(
    moto_url: str,
    asl_path: Path,
    session_duration: str = "PT1H",
    *,
    pagerduty_token: str,
    opsgenie_token: str,
) -> dict[str, str]:
    """Create everything the binary expects in moto; returns the ids/ARNs it needs.

    The tokens are the on-call fakes' (they go into the `break-glass/oncall` secret)."""
    out: dict[str, str] = {}
    sso = aws_client("sso-admin", moto_url)
    instance = sso.list_instances()["Instances"][0]  # moto creates one, as AWS has one
    out["SSO_INSTANCE_ARN"] = instance["InstanceArn"]
    out["IDENTITY_STORE_ID"] = instance["IdentityStoreId"]

    ids = aws_client("identitystore", moto_url)
    user_ids = {}
    for _, email, display, _ in USERS + EMAIL_USERS:
        given, family = display.split(" ", 1)
        user_ids[email] = ids.create_user(
            IdentityStoreId=out["IDENTITY_STORE_ID"],
            UserName=email,
            DisplayName=display,
            Name={"GivenName": given, "FamilyName": family},
            Emails=[{"Value": email, "Type": "work", "Primary": True}],
        )["UserId"]
    group = ids.create_group(IdentityStoreId=out["IDENTITY_STORE_ID"], DisplayName=GROUP)["GroupId"]
    ids.create_group_membership(
        IdentityStoreId=out["IDENTITY_STORE_ID"],
        GroupId=group,
        MemberId={"UserId": user_ids[EMAIL_USERS[1][1]]},
    )

    for key, name, description in [
        ("EXAMPLE_PERMISSION_SET_ARN", "BreakGlassAdmin", "Emergency administrator access"),
        ("READONLY_PERMISSION_SET_ARN", "ReadOnly", "Read-only access"),
        ("EXAMPLE_GATED_PERMISSION_SET_ARN", "BreakGlassGated", "Access while on call, else with an approval"),
        ("SECONDARY_GATED_PERMISSION_SET_ARN", "BreakGlassSecondary", "Access while on call (levels 1-2)"),
        ("INCIDENT_GATED_PERMISSION_SET_ARN", "BreakGlassIncident", "Access while on call, for an incident"),
        ("MULTI_ACCOUNT_PERMISSION_SET_ARN", "BreakGlassMulti", "Emergency access to several accounts at once"),
    ]:
        ps = sso.create_permission_set(
            InstanceArn=out["SSO_INSTANCE_ARN"],
            Name=name,
            Description=description,
            SessionDuration=session_duration,
        )
        out[key] = ps["PermissionSet"]["PermissionSetArn"]

    aws_client("dynamodb", moto_url).create_table(
        TableName=TABLE_NAME,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"}
            for a in ("pk", "sk", "day", "requested_at", "review_pending", "reported_at", "live")
        ],
        # As the CDK app makes them: the audit export's, the pending reviews', and the live
        # items' (leases, creation intents, session denies: the reconciler's, keys only).
        GlobalSecondaryIndexes=[
            {
                "IndexName": name,
                "KeySchema": [
                    {"AttributeName": hash_key, "KeyType": "HASH"},
                    {"AttributeName": range_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": projection},
            }
            for name, hash_key, range_key, projection in (
                ("by_day", "day", "requested_at", "ALL"),
                ("reviews_pending", "review_pending", "reported_at", "ALL"),
                ("live", "live", "pk", "KEYS_ONLY"),
            )
        ],
    )
    aws_client("ses", moto_url).verify_email_identity(EmailAddress=SENDER)

    signing_secret = secrets.token_hex(32)
    secret = aws_client("secretsmanager", moto_url).create_secret(
        Name=SECRET_NAME,
        SecretString=json.dumps(
            {"signing_secrets": [signing_secret], "bot_token": f"xoxb-test-{secrets.token_hex(12)}"}
        ),
    )
    out["SLACK_SECRET_ARN"] = secret["ARN"]
    out["SLACK_SIGNING_SECRET"] = signing_secret
    oncall_secret = aws_client("secretsmanager", moto_url).create_secret(
        Name=ONCALL_SECRET_NAME,
        SecretString=json.dumps(
            {"pagerduty": {"token": pagerduty_token, "from": ONCALL_FROM}, "opsgenie": {"token": opsgenie_token}}
        ),
    )
    out["ONCALL_SECRET_ARN"] = oncall_secret["ARN"]

    worker_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{FUNCTION}"
    definition = asl_path.read_text().replace("${WorkerFunctionArn}", worker_arn)
    leftover = sorted(set(re.findall(r"\$\{[A-Za-z0-9_]+\}", definition)))
    if leftover:
        print(f"stack: warning: unreplaced placeholders in {asl_path}: {', '.join(leftover)}")
    machine = aws_client("stepfunctions", moto_url).create_state_machine(
        name=FUNCTION,
        definition=definition,
        roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/break-glass-states",
    )
    out["STATE_MACHINE_ARN"] = machine["stateMachineArn"]
    return out


def seed_slack(slack_url: str) -> None:
    users = {
        uid: {
            "id": uid,
            "team_id": SLACK_TEAM_ID,
            "name": handle,
            "real_name": display,
            "is_bot": False,
            "deleted": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "profile": {"email": email, "real_name": display, "display_name": handle},
        }
        for uid, email, display, handle in USERS + EMAIL_USERS + SLACK_ONLY_USERS
    }
    for uid, quirk in REFUSED_SLACK_USERS.items():
        users[uid] = {**users[USERS[0][0]], "id": uid, "name": uid.lower(), **quirk}
        users[uid]["profile"] = {"email": f"{uid.lower()}@example.com"}
    http_json("POST", f"{slack_url}/_testbed/users", users)


def seed_oncall(pagerduty_url: str, opsgenie_url: str) -> None:
    """Nobody on call (the fakes start empty); the Opsgenie schedule exists (no 404)."""
    http_json("PUT", f"{opsgenie_url}/_testbed/oncall", {"schedule_id": OPSGENIE_SCHEDULE, "emails": []})


def seconds_of(duration: str) -> int:
    """`1h30m` → 5400 (the policy's duration syntax)."""
    total = 0
    for number, unit in re.findall(r"(\d+)([hms])", duration):
        total += int(number) * {"h": 3600, "m": 60, "s": 1}[unit]
    return total


def policy_toml(
    permission_set_arn: str,
    duration: str,
    review_within: str = "24h",
    *,
    gated_permission_set_arn: str,
    secondary_gated_permission_set_arn: str,
    incident_gated_permission_set_arn: str,
    approval_timeout: str = "30m",
    multi_account_permission_set_arn: str = "BreakGlassMulti",
) -> str:
    users = "\n".join(f'{uid} = "{email}"' for uid, email, _, _ in USERS)
    covered = [uid for uid, _, _, _ in USERS] + [EMAIL_USERS[0][0]] + list(REFUSED_SLACK_USERS)
    slack_users = ", ".join(f'"{uid}"' for uid in covered)
    max_duration = "24h" if seconds_of(duration) > 4 * 3600 else "4h"
    # The on-call gated rules: who and how long as the "oncall" rule.
    gated_common = f"""effect = "allow"
slack_users = [{slack_users}]
accounts = ["{ACCOUNT_ID}"]"""
    gated_durations = "\n".join([
        f'default_duration = "{duration}"',
        f'max_duration = "{max_duration}"',
        f'notify_channel = "{NOTIFY_CHANNEL}"',
    ])
    return f"""version = 1
responders = ["{RESPONDER}"]
# Written by testbed/stack.py. Alice and Bob are mapped explicitly; Carol is found through
# her Slack e-mail; Dave through his e-mail and the SRE group.
[users]
{users}
[accounts]
"{ACCOUNT_ID}" = "production"
[[rule]]
name = "oncall"
effect = "allow"
slack_users = [{slack_users}]
accounts = ["{ACCOUNT_ID}"]
permission_sets = ["{permission_set_arn}"]
default_duration = "{duration}"
max_duration = "{max_duration}"
notify_channel = "{NOTIFY_CHANNEL}"
[[rule]]
name = "sre-readonly"
effect = "allow"
sso_groups = ["{GROUP}"]
accounts = ["{ACCOUNT_ID}"]
permission_sets = ["ReadOnly"]
default_duration = "{duration if seconds_of(duration) <= 3600 else "1h"}"
max_duration = "1h"
reason_required = true
end_sessions = true
standing_access = "remove"
# On-call gated: while on call in PagerDuty, else an approval by the approver or the group.
[[rule]]
name = "oncall-gated"
{gated_common}
permission_sets = ["{gated_permission_set_arn}"]
{gated_durations}
oncall = ["pagerduty:{ONCALL_SCHEDULE}"]
approvers = ["{APPROVER}", "{GROUP}"]
approval_timeout = "{approval_timeout}"
# Levels 1 and 2 of PagerDuty's second schedule, else refused; allowed when PagerDuty is down.
[[rule]]
name = "secondary-gated"
{gated_common}
permission_sets = ["{secondary_gated_permission_set_arn}"]
{gated_durations}
oncall = ["pagerduty:{SECONDARY_SCHEDULE}"]
oncall_levels = [1, 2]
otherwise = "deny"
oncall_unreachable = "allow"
# On call in Opsgenie, and an incident given; else refused.
[[rule]]
name = "incident-gated"
{gated_common}
permission_sets = ["{incident_gated_permission_set_arn}"]
{gated_durations}
oncall = ["opsgenie:{OPSGENIE_SCHEDULE}"]
otherwise = "deny"
approvers = ["{APPROVER}"]
incident_required = true
# Every account of the organization, one permission set: for judy only (the modal's
# type-ahead offers the organization's accounts).
[[rule]]
name = "org-wide-readonly"
effect = "allow"
slack_users = ["{ORG_WIDE_USER}"]
accounts = ["*"]
permission_sets = ["ReadOnly"]
{gated_durations}
# Two accounts in one request (one reason, one report), one permission set: for ken only.
[[rule]]
name = "multi-account"
effect = "allow"
slack_users = ["{MULTI_ACCOUNT_USER}"]
accounts = ["{ACCOUNT_ID}", "{SECOND_ACCOUNT_ID}"]
permission_sets = ["{multi_account_permission_set_arn}"]
max_accounts = 2
end_sessions = true
{gated_durations}
[reconcile]
notify_channel = "{RECONCILE_CHANNEL}"
[review]
channel = "{REVIEW_CHANNEL}"
reviewers = ["{REVIEWER}", "{RESPONDER}", "{GROUP}"]
within = "{review_within}"
escalate_to = "{ESCALATION_CHANNEL}"
"""


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


# ------------------------------------------------------------------ the stack


class Stack:
    """Starts the local stack; ``env`` holds what the env file holds."""

    def __init__(
        self,
        env_file: str | Path,
        binary: str | Path | None = None,
        instances: int = 2,
        cloudtrail_delay_seconds: int = 900,
        duration: str = "1h",
        hold_recheck_seconds: int | None = None,
        no_binary: bool = False,
        asl: str | Path | None = None,
        startup_timeout: float = 60.0,
        session_duration: str = "PT1H",
        review_within: str = "24h",
        approval_timeout: str = "30m",
        policy: str | Path | None = None,
    ):
        self.env_file = Path(env_file).resolve()
        self.env_dir = self.env_file.parent
        self.log_dir = self.env_dir / "logs"
        # A given policy file is used as it is; otherwise the example policy is written here.
        self.given_policy = Path(policy).resolve() if policy else None
        self.policy_file = self.given_policy or self.env_dir / "policy.toml"
        self.binary = Path(binary or REPO / "target" / "debug" / FUNCTION).resolve()
        self.instances = 0 if no_binary else instances
        self.cloudtrail_delay_seconds = cloudtrail_delay_seconds
        self.duration = duration
        self.hold_recheck_seconds = hold_recheck_seconds
        self.session_duration = session_duration
        self.review_within = review_within
        self.approval_timeout = approval_timeout
        self.asl = Path(asl or REPO / "sfn" / "break-glass.asl.json").resolve()
        self.startup_timeout = startup_timeout
        self.children: list[Child] = []
        self.env: dict[str, str] = {}
        # Our own parent (make, a test harness) going away is noticed by polling: a
        # PR_SET_PDEATHSIG on ourselves would fire when the *thread* that spawned us exits,
        # e.g. one Rust test of many.
        self.parent_pid = os.getppid()

    # -- lifecycle

    def __enter__(self) -> "Stack":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        if self.instances and not (self.binary.is_file() and os.access(self.binary, os.X_OK)):
            raise StackError(f"{self.binary} not found: run `cargo build` first")
        if not self.asl.is_file():
            raise StackError(f"state machine definition {self.asl} not found")
        if self.given_policy and not self.given_policy.is_file():
            raise StackError(f"policy file {self.given_policy} not found")
        cargo_lambda = Path(sys.executable).parent / "cargo-lambda"
        if not cargo_lambda.exists():
            raise StackError(f"{cargo_lambda} not found: pip install cargo-lambda (see requirements.txt)")
        self.env_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.env_file.unlink(missing_ok=True)
        deadline = time.monotonic() + self.startup_timeout

        # 1. runtime emulator first: moto needs its port to forward Invoke. It only reads
        # a manifest (`cargo metadata`) for function names; a stub keeps it independent of
        # the real crate's state (mid-edit, being built, dependencies not fetched).
        stub = self.env_dir / "cargo-lambda-stub"
        (stub / "src").mkdir(parents=True, exist_ok=True)
        (stub / "Cargo.toml").write_text(STUB_MANIFEST)
        (stub / "src" / "main.rs").write_text("fn main() {}\n")
        watch_port = free_port()
        watch = self._spawn(
            "cargo-lambda-watch",
            [str(cargo_lambda), "lambda", "watch", "--only-lambda-apis",
             "--manifest-path", str(stub / "Cargo.toml"), "-A", HOST, "-P", str(watch_port)]
            + (["-vv"] if os.environ.get("BG_WATCH_VERBOSE") else []),
            dict(os.environ, NO_COLOR="1"),
        )
        watch_url = f"http://{HOST}:{watch_port}"

        moto = self._spawn(
            "moto",
            [sys.executable, str(TESTBED / "motoext.py"), "--port", "0"],
            dict(os.environ, BG_LAMBDA_FORWARD_URL=watch_url, BG_LAMBDA_FORWARD_FUNCTION=FUNCTION),
        )
        slack = self._spawn(
            "slack-fake",
            [sys.executable, str(TESTBED / "slackfake.py"), "--port", "0", "--verbose"],
            dict(os.environ),
        )
        pagerduty_token, opsgenie_token = secrets.token_hex(16), secrets.token_hex(16)
        pagerduty = self._spawn(
            "pagerduty-fake",
            [sys.executable, str(TESTBED / "oncallfake.py"), "--service", "pagerduty",
             "--token", pagerduty_token, "--port", "0", "--verbose"],
            dict(os.environ),
        )
        opsgenie = self._spawn(
            "opsgenie-fake",
            [sys.executable, str(TESTBED / "oncallfake.py"), "--service", "opsgenie",
             "--token", opsgenie_token, "--port", "0", "--verbose"],
            dict(os.environ),
        )
        moto_url = f"http://{HOST}:{moto.wait_ready_line(deadline)}"
        slack_url = f"http://{HOST}:{slack.wait_ready_line(deadline)}"
        pagerduty_url = f"http://{HOST}:{pagerduty.wait_ready_line(deadline)}"
        opsgenie_url = f"http://{HOST}:{opsgenie.wait_ready_line(deadline)}"
        if not wait_tcp(watch_port, deadline):
            raise watch.failure("did not open its port")

        # 2. seed
        ids = seed_aws(moto_url, self.asl, self.session_duration,
                       pagerduty_token=pagerduty_token, opsgenie_token=opsgenie_token)
        seed_slack(slack_url)
        seed_oncall(pagerduty_url, opsgenie_url)
        if self.given_policy is None:
            write_atomically(
                self.policy_file,
                policy_toml(
                    ids["EXAMPLE_PERMISSION_SET_ARN"],
                    self.duration,
                    self.review_within,
                    gated_permission_set_arn=ids["EXAMPLE_GATED_PERMISSION_SET_ARN"],
                    secondary_gated_permission_set_arn=ids["SECONDARY_GATED_PERMISSION_SET_ARN"],
                    incident_gated_permission_set_arn=ids["INCIDENT_GATED_PERMISSION_SET_ARN"],
                    approval_timeout=self.approval_timeout,
                    multi_account_permission_set_arn=ids["MULTI_ACCOUNT_PERMISSION_SET_ARN"],
                ),
            )

        # 3. the binary, as many times as asked, all serving the same function
        bin_env = self._binary_env(watch_url, moto_url, slack_url, ids, pagerduty_url, opsgenie_url)
        for i in range(self.instances):
            self._spawn(f"{FUNCTION}-{i + 1}", [str(self.binary)], bin_env)
        # There is no readiness probe short of invoking it: give it a moment to crash.
        settle = time.monotonic() + 1.0
        while time.monotonic() < settle:
            self.check()
            time.sleep(0.1)

        example_user, example_email = USERS[0][0], USERS[0][1]
        self.env = {
            "WEBHOOK_URL": f"{watch_url}/lambda-url/{FUNCTION}/",
            "SLACK_SIGNING_SECRET": ids["SLACK_SIGNING_SECRET"],
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_REGION": REGION,
            "STATE_MACHINE_ARN": ids["STATE_MACHINE_ARN"],
            "TABLE_NAME": TABLE_NAME,
            "LAMBDA_ENDPOINT_URL": watch_url,
            "WORKER_FUNCTION": FUNCTION,
            "SLACK_API_URL": f"{slack_url}/api",
            "EXAMPLE_SLACK_USER_ID": example_user,
            "EXAMPLE_SSO_USER_NAME": example_email,
            "EXAMPLE_ACCOUNT_ID": ACCOUNT_ID,
            "EXAMPLE_PERMISSION_SET_ARN": ids["EXAMPLE_PERMISSION_SET_ARN"],
            "SLACK_TEAM_ID": SLACK_TEAM_ID,
            "SLACK_API_APP_ID": SLACK_API_APP_ID,
            # extras for tests
            "MOTO_URL": moto_url,
            "SLACK_FAKE_URL": slack_url,
            "SSO_INSTANCE_ARN": ids["SSO_INSTANCE_ARN"],
            "IDENTITY_STORE_ID": ids["IDENTITY_STORE_ID"],
            "READONLY_PERMISSION_SET_ARN": ids["READONLY_PERMISSION_SET_ARN"],
            "SLACK_SECRET_ARN": ids["SLACK_SECRET_ARN"],
            "SECOND_SLACK_USER_ID": USERS[1][0],
            "SECOND_SSO_USER_NAME": USERS[1][1],
            # More allowed users, one lease each for concurrent tests: slack=sso pairs.
            "ORG_WIDE_SLACK_USER_ID": ORG_WIDE_USER,
            # Several accounts in one request: the `multi-account` rule's user, second account
            # and permission set.
            "MULTI_ACCOUNT_SLACK_USER_ID": MULTI_ACCOUNT_USER,
            "SECOND_ACCOUNT_ID": SECOND_ACCOUNT_ID,
            "MULTI_ACCOUNT_PERMISSION_SET_ARN": ids["MULTI_ACCOUNT_PERMISSION_SET_ARN"],
            "SPARE_USERS": ",".join(f"{uid}={email}" for uid, email, _, _ in USERS[2:]),
            "EMAIL_SLACK_USER_ID": EMAIL_USERS[0][0],
            "EMAIL_SSO_USER_NAME": EMAIL_USERS[0][1],
            "GROUP_SLACK_USER_ID": EMAIL_USERS[1][0],
            "GROUP_SSO_USER_NAME": EMAIL_USERS[1][1],
            "NOTIFY_CHANNEL": NOTIFY_CHANNEL,
            "RECONCILE_CHANNEL": RECONCILE_CHANNEL,
            "RESPONDER_SLACK_USER_ID": RESPONDER,
            "EXAMPLE_REVIEWER_SLACK_USER_ID": REVIEWER,
            "REVIEW_CHANNEL": REVIEW_CHANNEL,
            "ESCALATION_CHANNEL": ESCALATION_CHANNEL,
            # On-call gating: the fakes (their /_testbed/oncall sets who is on call), the rules'
            # schedules, permission sets and approver.
            "PAGERDUTY_API_URL": pagerduty_url,
            "OPSGENIE_API_URL": opsgenie_url,
            "EXAMPLE_ONCALL_SCHEDULE_ID": ONCALL_SCHEDULE,
            "SECONDARY_ONCALL_SCHEDULE_ID": SECONDARY_SCHEDULE,
            "OPSGENIE_SCHEDULE_ID": OPSGENIE_SCHEDULE,
            "EXAMPLE_APPROVER_SLACK_USER_ID": APPROVER,
            "EXAMPLE_GATED_PERMISSION_SET_ARN": ids["EXAMPLE_GATED_PERMISSION_SET_ARN"],
            "SECONDARY_GATED_PERMISSION_SET_ARN": ids["SECONDARY_GATED_PERMISSION_SET_ARN"],
            "INCIDENT_GATED_PERMISSION_SET_ARN": ids["INCIDENT_GATED_PERMISSION_SET_ARN"],
            "ONCALL_SECRET_ARN": ids["ONCALL_SECRET_ARN"],
            "POLICY_FILE": str(self.policy_file),
            "LOG_DIR": str(self.log_dir),
        }
        write_atomically(self.env_file, "".join(f"{k}={v}\n" for k, v in self.env.items()))

    def _binary_env(
        self,
        watch_url: str,
        moto_url: str,
        slack_url: str,
        ids: dict[str, str],
        pagerduty_url: str,
        opsgenie_url: str,
    ) -> dict[str, str]:
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
        # Empty AWS config files keep the developer's ~/.aws out (a missing one draws a warning).
        aws_config, aws_credentials = self.env_dir / "aws-config", self.env_dir / "aws-credentials"
        aws_config.write_text("")
        aws_credentials.write_text("")
        env.update(
            AWS_LAMBDA_RUNTIME_API=f"{watch_url}/.rt/{FUNCTION}",
            AWS_LAMBDA_FUNCTION_NAME=FUNCTION,
            AWS_LAMBDA_FUNCTION_VERSION="1",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
            AWS_ENDPOINT_URL=moto_url,
            AWS_REGION=REGION,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_CONFIG_FILE=str(aws_config),
            AWS_SHARED_CREDENTIALS_FILE=str(aws_credentials),
            AWS_EC2_METADATA_DISABLED="true",
            TABLE_NAME=TABLE_NAME,
            STATE_MACHINE_ARN=ids["STATE_MACHINE_ARN"],
            POLICY_FILE=str(self.policy_file),
            SLACK_SECRET_ARN=ids["SLACK_SECRET_ARN"],
            SLACK_API_URL=f"{slack_url}/api",
            SLACK_TEAM_ID=SLACK_TEAM_ID,
            SLACK_API_APP_ID=SLACK_API_APP_ID,
            SSO_INSTANCE_ARN=ids["SSO_INSTANCE_ARN"],
            IDENTITY_STORE_ID=ids["IDENTITY_STORE_ID"],
            REPORT_SENDER=SENDER,
            REPORT_RECIPIENTS=RECIPIENTS,
            CLOUDTRAIL_DELAY_SECONDS=str(self.cloudtrail_delay_seconds),
            CLOUDTRAIL_REGIONS=REGION,
            REPORT_ROLE_NAME=REPORT_ROLE_NAME,
            ONCALL_SECRET_ARN=ids["ONCALL_SECRET_ARN"],
            PAGERDUTY_API_URL=pagerduty_url,
            OPSGENIE_API_URL=opsgenie_url,
            ONCALL_CACHE_SECONDS="0",  # off: tests change who is on call between requests
            RUST_LOG="info",
        )
        if self.hold_recheck_seconds is not None:
            env["HOLD_RECHECK_SECONDS"] = str(self.hold_recheck_seconds)
        env.update({k: v for k, v in os.environ.items() if k.startswith(("BG_", "RUST_")) or k in ("AWS_CALL_TIMEOUT_SECONDS", "REPORT_MAX_ROWS", "REPORT_TO_REQUESTER", "END_SESSIONS_MARGIN_SECONDS", "RECONCILE_GRACE_SECONDS", "ONCALL_TIMEOUT_MS", "RECONCILE_PAIRS_PER_RUN", "RECONCILE_BUDGET_SECONDS", "IDENTITY_CENTER_CALLS_PER_SECOND", "ACCOUNTS_CACHE_SECONDS")})
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        child = Child(name, argv, env, self.log_dir)
        self.children.append(child)
        return child

    def check(self) -> None:
        """Raise StackError if any child has exited or our parent process went away."""
        if os.getppid() != self.parent_pid:
            raise StackError("the parent process went away")
        for child in self.children:
            if not child.alive():
                raise child.failure("exited unexpectedly")

    def stop(self) -> None:
        stop_children(self.children)
        self.children = []
        self.env_file.unlink(missing_ok=True)

    def summary(self) -> str:
        e = self.env
        return "\n".join(
            [
                "break-glass local stack ready:",
                f"  webhook (Slack interactivity)  {e['WEBHOOK_URL']}",
                f"  Lambda invoke API              {e['LAMBDA_ENDPOINT_URL']} (function {e['WORKER_FUNCTION']})",
                f"  AWS (moto)                     {e['AWS_ENDPOINT_URL']}",
                f"  Slack fake                     {e['SLACK_API_URL']}",
                f"  state machine                  {e['STATE_MACHINE_ARN']}",
                f"  example: Slack {e['EXAMPLE_SLACK_USER_ID']} = {e['EXAMPLE_SSO_USER_NAME']}, "
                f"account {e['EXAMPLE_ACCOUNT_ID']}",
                f"  reviews: reviewer Slack {e['EXAMPLE_REVIEWER_SLACK_USER_ID']} in {e['REVIEW_CHANNEL']}, "
                f"within {self.review_within}; CloudTrail delay {self.cloudtrail_delay_seconds} s",
                f"  on-call gating: BreakGlassGated while on call in PagerDuty {ONCALL_SCHEDULE}, else approved by "
                f"Slack {e['EXAMPLE_APPROVER_SLACK_USER_ID']} (or {GROUP}) within {self.approval_timeout}; nobody is "
                f"on call: curl -X PUT {e['PAGERDUTY_API_URL']}/_testbed/oncall "
                f"""-d '{{"schedule_id":"{ONCALL_SCHEDULE}","emails":["alice@example.com"],"level":1}}'""",
                f"  binary instances               {self.instances} ({self.binary if self.instances else 'none'})",
                f"  env file {self.env_file}, policy {self.policy_file}, logs {self.log_dir}/",
                "Ctrl-C to stop.",
            ]
        )


# ------------------------------------------------------------------ CLI

def _request_stop(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds start() or the wait loop alike; main() cleans up


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the break-glass local stack.")
    parser.add_argument("--env-file", required=True, help="where to write KEY=value lines once ready")
    parser.add_argument("--binary", help="default: <repo>/target/debug/break-glass")
    parser.add_argument("--instances", type=int, default=2, help="copies of the binary (default 2)")
    parser.add_argument("--cloudtrail-delay-seconds", type=int, default=900)
    parser.add_argument("--duration", default="1h", help="policy default_duration (default 1h)")
    parser.add_argument(
        "--hold-recheck-seconds",
        type=int,
        help="the longest a hold waits before it looks at its lease again (default: the binary's, 3600)",
    )
    parser.add_argument(
        "--review-within",
        default="24h",
        help="the policy's review time: a pending review is reminded after it, escalated after twice it (default 24h)",
    )
    parser.add_argument(
        "--approval-timeout",
        default="30m",
        help="how long an approval request waits before it expires (the oncall-gated rule's approval_timeout; default 30m)",
    )
    parser.add_argument("--no-binary", action="store_true", help="start and seed everything but the binary")
    parser.add_argument(
        "--policy",
        help="a policy file for the binary to read instead of the example policy (<envdir>/policy.toml)",
    )
    parser.add_argument("--asl", help="default: <repo>/sfn/break-glass.asl.json")
    parser.add_argument(
        "--session-duration",
        default="PT1H",
        help="SessionDuration of the seeded permission sets (default PT1H); a rule with end_sessions lifts its deny this long after revoke",
    )
    args = parser.parse_args()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _request_stop)

    stack = Stack(
        args.env_file,
        binary=args.binary,
        instances=args.instances,
        cloudtrail_delay_seconds=args.cloudtrail_delay_seconds,
        duration=args.duration,
        hold_recheck_seconds=args.hold_recheck_seconds,
        no_binary=args.no_binary,
        asl=args.asl,
        session_duration=args.session_duration,
        review_within=args.review_within,
        approval_timeout=args.approval_timeout,
        policy=args.policy,
    )
    status = 0
    try:
        stack.start()
        print(stack.summary(), flush=True)
        while True:
            stack.check()
            time.sleep(0.25)
    except KeyboardInterrupt:
        print("break-glass local stack: stopping", flush=True)
    except StackError as e:
        print(f"break-glass local stack: {e}", file=sys.stderr, flush=True)
        status = 1
    except Exception as e:  # seeding errors and the like: say what, then clean up
        print(f"break-glass local stack: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        status = 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not skip the cleanup
        stack.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())
