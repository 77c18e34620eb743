"""`make demo`: one whole break-glass cycle on the local stack.

    python testbed/demo.py [--binary PATH] [--timeout SECONDS]

Signed Slack click (the 2022 demo's legacy `interactive_message`) → grant → hold (20 s) →
revoke → CloudTrail wait (3 s) → report. Fixture CloudTrail events for alice's session (and
one look-alike session that must stay out of the report) are posted once access is granted.
Writes target/demo/report.html and target/demo/report.txt and prints where they are.
Builds nothing: run `cargo build` first.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from signing import signed_headers  # noqa: E402
from stack import (  # noqa: E402
    ACCOUNT_ID,
    REGION,
    REPO,
    Stack,
    StackError,
    aws_client,
    http_json,
)

OUT_DIR = REPO / "target" / "demo"
SESSION_ROLE = "AWSReservedSSO_BreakGlassAdmin_0123456789abcdef"
ALICE = "alice@example.com"
LOOKALIKE_MARKER = "not-alices-bucket"  # only in the look-alike session's event


class DemoError(Exception):
    pass


class Clock:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def say(self, what: str) -> None:
        print(f"[{time.monotonic() - self.start:6.1f}s] {what}", flush=True)


# ------------------------------------------------------------------ the click


def click_payload(env: dict[str, str]) -> dict[str, Any]:
    """The seed's message, clicked on "Break Glass Prod" by alice."""
    ps_arn = env["EXAMPLE_PERMISSION_SET_ARN"]
    callback_id = f"deployment_{env['EXAMPLE_ACCOUNT_ID']}_abc"
    now = f"{time.time():.6f}"
    attachment = {
        "id": 1,
        "type": "mrkdwn",
        "text": "Deployment *ABC* is being rolled back.",
        "fallback": "Deployment ABC is being rolled back.",
        "callback_id": callback_id,
        "color": "fc6f03",
        "attachment_type": "default",
        "actions": [
            {"id": "1", "name": "retry", "text": "Retry", "type": "button", "value": "retry", "style": ""},
            {
                "id": "2",
                "name": "break_glass",
                "text": "Break Glass Prod",
                "type": "button",
                "value": ps_arn,
                "style": "danger",
                "confirm": {"title": "Are you sure?", "text": "Are you sure?", "ok_text": "Yes", "dismiss_text": "No"},
            },
        ],
    }
    return {
        "type": "interactive_message",
        "actions": [{"name": "break_glass", "type": "button", "value": ps_arn}],
        "callback_id": callback_id,
        "team": {"id": env["SLACK_TEAM_ID"], "domain": "example"},
        "channel": {"id": "C0DEPLOYS01", "name": "deploys"},
        "user": {"id": env["EXAMPLE_SLACK_USER_ID"], "name": "alice"},
        "action_ts": now,
        "message_ts": f"{time.time() - 60:.6f}",
        "attachment_id": "1",
        "token": "x",
        "is_app_unfurl": False,
        "original_message": {
            "type": "message",
            "subtype": "bot_message",
            "text": "",
            "ts": f"{time.time() - 60:.6f}",
            "username": "Live Laugh Ship",
            "icons": {"emoji": ":sparkles:"},
            "bot_id": "B0DEPLOYBOT",
            "attachments": [attachment],
        },
        "response_url": f"{env['SLACK_FAKE_URL']}/response/demo",
        "trigger_id": f"{int(time.time())}.1234567890.{uuid.uuid4().hex[:32]}",
        "api_app_id": env["SLACK_API_APP_ID"],
    }


def send_click(env: dict[str, str]) -> tuple[int, str]:
    body = urllib.parse.urlencode({"payload": json.dumps(click_payload(env))}).encode()
    req = urllib.request.Request(
        env["WEBHOOK_URL"], data=body, method="POST", headers=signed_headers(env["SLACK_SIGNING_SECRET"], body)
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


# ------------------------------------------------------------------ CloudTrail fixtures


def ct_record(session: str, source: str, name: str, read_only: bool, now: datetime, seq: int, **extra: Any) -> dict[str, Any]:
    role_arn = f"arn:aws:iam::{ACCOUNT_ID}:role/aws-reserved/sso.amazonaws.com/{SESSION_ROLE}"
    record = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"AROAEXAMPLEBREAKGLASS:{session}",
            "arn": f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{SESSION_ROLE}/{session}",
            "accountId": ACCOUNT_ID,
            "accessKeyId": "ASIAEXAMPLE" + ("EVIL0000" if session != ALICE else "ALICE000") + str(seq),
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLEBREAKGLASS",
                    "arn": role_arn,
                    "accountId": ACCOUNT_ID,
                    "userName": SESSION_ROLE,
                },
                "attributes": {"creationDate": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "mfaAuthenticated": "false"},
            },
        },
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": "198.51.100.23",
        "userAgent": "aws-cli/2.17.0 md/arch#x86_64 command/demo",
        "requestParameters": None,
        "responseElements": None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": ACCOUNT_ID,
        "eventCategory": "Management",
    }
    record.update(extra)
    return record


def fixture_events() -> list[dict[str, Any]]:
    # CloudTrail times have whole seconds: round up so no event predates the grant.
    now = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=1)
    return [
        ct_record(ALICE, "signin.amazonaws.com", "ConsoleLogin", False, now, 1,
                  eventType="AwsConsoleSignIn", userAgent="Mozilla/5.0",
                  responseElements={"ConsoleLogin": "Success"},
                  additionalEventData={"MFAUsed": "No", "MobileVersion": "No"}),
        ct_record(ALICE, "s3.amazonaws.com", "ListBuckets", True, now, 2,
                  requestParameters={"Host": "s3.amazonaws.com"}),
        ct_record(ALICE, "ec2.amazonaws.com", "DescribeInstances", True, now, 3,
                  requestParameters={"instancesSet": {}, "filterSet": {}}),
        ct_record(ALICE, "iam.amazonaws.com", "CreateAccessKey", False, now, 4,
                  requestParameters={"userName": "deploy-bot"},
                  responseElements={"accessKey": {"accessKeyId": "AKIAEXAMPLENEWKEY001", "status": "Active", "userName": "deploy-bot"}},
                  resources=[{"ARN": f"arn:aws:iam::{ACCOUNT_ID}:user/deploy-bot", "accountId": ACCOUNT_ID, "type": "AWS::IAM::User"}]),
        ct_record(ALICE, "organizations.amazonaws.com", "ListAccounts", True, now, 5,
                  errorCode="AccessDenied",
                  errorMessage="You don't have permissions to access this resource."),
        # Same role, a session whose name merely starts with alice's: must not be reported.
        ct_record(f"{ALICE}.evil", "s3.amazonaws.com", "DeleteBucket", False, now, 6,
                  requestParameters={"bucketName": LOOKALIKE_MARKER, "Host": f"{LOOKALIKE_MARKER}.s3.amazonaws.com"},
                  resources=[{"ARN": f"arn:aws:s3:::{LOOKALIKE_MARKER}", "accountId": ACCOUNT_ID, "type": "AWS::S3::Bucket"}]),
    ]


# ------------------------------------------------------------------ the cycle


def failure_of(sfn: Any, execution_arn: str) -> str:
    events = sfn.get_execution_history(executionArn=execution_arn, reverseOrder=True)["events"]
    for event in events:
        for key, details in event.items():
            if key.endswith("FailedEventDetails") or key.endswith("AbortedEventDetails") or key.endswith("TimedOutEventDetails"):
                return f"{event['type']}: {details.get('error')}: {details.get('cause')}"
    return "no failure event in the history"


def assignment_exists(sso: Any, env: dict[str, str], principal_id: str) -> bool:
    pages = sso.get_paginator("list_account_assignments").paginate(
        InstanceArn=env["SSO_INSTANCE_ARN"], AccountId=env["EXAMPLE_ACCOUNT_ID"],
        PermissionSetArn=env["EXAMPLE_PERMISSION_SET_ARN"],
    )
    return any(
        a["PrincipalType"] == "USER" and a["PrincipalId"] == principal_id
        for page in pages for a in page["AccountAssignments"]
    )


def report_message(env: dict[str, str]) -> dict[str, Any] | None:
    messages = http_json("GET", f"{env['MOTO_URL']}/_testbed/ses/messages")
    return messages[-1] if messages else None


def message_parts(message: dict[str, Any]) -> tuple[str, str]:
    """(html, text) of an SES outbox entry; raw MIME is parsed with the email package."""
    if message["type"] == "email":
        return message.get("html") or "", message.get("text") or ""
    if message["type"] != "raw":
        raise DemoError(f"unexpected SES message type {message['type']}")
    mime = email.message_from_string(message["raw"], policy=email.policy.default)
    parts = {"html": "", "plain": ""}
    for part in mime.walk():
        if part.get_content_maintype() == "text" and part.get_content_subtype() in parts and not part.is_attachment():
            parts[part.get_content_subtype()] = part.get_content()
    return parts["html"], parts["plain"]


def run_cycle(stack: Stack, timeout: float) -> Path:
    env = stack.env
    sfn = aws_client("stepfunctions", env["AWS_ENDPOINT_URL"])
    sso = aws_client("sso-admin", env["AWS_ENDPOINT_URL"])
    ids = aws_client("identitystore", env["AWS_ENDPOINT_URL"])
    principal_id = ids.get_user_id(
        IdentityStoreId=env["IDENTITY_STORE_ID"],
        AlternateIdentifier={"UniqueAttribute": {"AttributePath": "emails.value", "AttributeValue": env["EXAMPLE_SSO_USER_NAME"]}},
    )["UserId"]
    before = {e["executionArn"] for e in sfn.list_executions(stateMachineArn=env["STATE_MACHINE_ARN"])["executions"]}

    clock = Clock()
    status, reply = send_click(env)
    clock.say(f"click sent: HTTP {status} {reply}")
    if status != 200:
        raise DemoError(f"the webhook answered HTTP {status}")

    deadline = time.monotonic() + timeout
    execution_arn = None
    granted = revoked = reported = False
    while True:
        stack.check()
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f}s (granted={granted}, revoked={revoked}, report={reported})")
        if execution_arn is None:
            new = [e for e in sfn.list_executions(stateMachineArn=env["STATE_MACHINE_ARN"])["executions"]
                   if e["executionArn"] not in before]
            if new:
                execution_arn = new[0]["executionArn"]
                clock.say(f"execution started: {new[0]['name']}")
        if execution_arn is not None:
            if not granted and assignment_exists(sso, env, principal_id):
                granted = True
                clock.say(f"granted: {env['EXAMPLE_PERMISSION_SET_ARN']} in {env['EXAMPLE_ACCOUNT_ID']} to {env['EXAMPLE_SSO_USER_NAME']}")
                http_json("POST", f"{env['MOTO_URL']}/_testbed/cloudtrail/events",
                          {"account_id": ACCOUNT_ID, "region": REGION, "events": fixture_events()})
                clock.say("CloudTrail: 5 events of alice's session and 1 look-alike posted")
            if granted and not revoked and not assignment_exists(sso, env, principal_id):
                revoked = True
                clock.say("revoked")
            if not reported and report_message(env):
                reported = True
                clock.say("report sent")
            execution = sfn.describe_execution(executionArn=execution_arn)
            if execution["status"] == "SUCCEEDED":
                clock.say("execution SUCCEEDED")
                break
            if execution["status"] != "RUNNING":
                raise DemoError(f"execution {execution['status']}: {failure_of(sfn, execution_arn)}")
        time.sleep(0.5)

    if not granted:
        raise DemoError("the execution succeeded but the assignment was never seen")
    if assignment_exists(sso, env, principal_id):
        raise DemoError("the execution succeeded but the assignment is still there")
    message = report_message(env)
    if message is None:
        raise DemoError("the execution succeeded but no report e-mail was sent")
    html, text = message_parts(message)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    html_path, text_path = OUT_DIR / "report.html", OUT_DIR / "report.txt"
    html_path.write_text(html)
    text_path.write_text(text)
    if ACCOUNT_ID not in html:
        raise DemoError(f"the HTML report does not name account {ACCOUNT_ID} (see {html_path})")
    if "CreateAccessKey" not in html:
        raise DemoError(f"the HTML report misses alice's CreateAccessKey (see {html_path})")
    if LOOKALIKE_MARKER in html or LOOKALIKE_MARKER in text:
        raise DemoError(f"the report includes the look-alike session's event (see {html_path})")
    follow_ups = [r for r in http_json("GET", f"{env['SLACK_FAKE_URL']}/_testbed/requests")
                  if r["path"].startswith("/response/") or r["path"] == "/api/chat.postMessage"]
    clock.say(f"{len(follow_ups)} Slack follow-up(s) posted; report e-mailed to {message['destinations']}")
    return html_path


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description="One break-glass cycle on the local stack.")
    parser.add_argument("--binary", help="default: <repo>/target/debug/break-glass")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds for the whole cycle")
    parser.add_argument("--asl", help="default: <repo>/sfn/break-glass.asl.json")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    try:
        # Sessions of 5 s: the look for use after the end runs 8 s after the revoke.
        with Stack(OUT_DIR / "env", binary=args.binary, cloudtrail_delay_seconds=3, duration="20s", asl=args.asl,
                   session_duration="PT5S") as stack:
            print(f"local stack up in {time.monotonic() - started:.1f}s (logs: {stack.log_dir})", flush=True)
            html_path = run_cycle(stack, args.timeout)
    except (DemoError, StackError) as e:
        print(f"demo FAILED: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # an AWS call or the network failed: say what, exit non-zero
        print(f"demo FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"demo OK: report at {html_path} and {html_path.with_suffix('.txt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
