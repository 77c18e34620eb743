"""Fast self-tests of the test bed: real boto3 clients against the real servers on ephemeral ports.

    python -m unittest discover -s testbed        (from the repository root)
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

import motoext  # noqa: E402
import signing  # noqa: E402
import slackfake  # noqa: E402

ACCOUNT = "123456789012"
ROLE = "AWSReservedSSO_BreakGlassAdmin_0123456789abcdef"
SERVER: motoext.MotoExtServer | None = None  # one per process: moto's state is global


def setUpModule() -> None:
    global SERVER
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request lines
    motoext.log = lambda message: None
    SERVER = motoext.MotoExtServer().__enter__()


def tearDownModule() -> None:
    if SERVER:
        SERVER.__exit__(None, None, None)


def client(service: str) -> Any:
    assert SERVER
    return boto3.client(
        service,
        endpoint_url=SERVER.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )


def call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def record(session: str, minute: int, second: int, name: str = "ListBuckets", read_only: bool = True) -> dict[str, Any]:
    return {
        "eventTime": f"2026-11-24T08:{minute:02d}:{second:02d}Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.1",
        "userAgent": "test",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"AROAX:{session}",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/{session}",
            "accountId": ACCOUNT,
            "accessKeyId": "ASIAEXAMPLE",
        },
        "requestParameters": None,
        "responseElements": None,
        "readOnly": read_only,
        "eventID": f"{session}-{minute}-{second}",
        "resources": [],
    }


def post_events(events: list[dict[str, Any]], account: str = ACCOUNT, region: str = "us-east-1") -> None:
    assert SERVER
    status, _ = call("POST", f"{SERVER.url}/_testbed/cloudtrail/events",
                     {"account_id": account, "region": region, "events": events})
    assert status == 200


class Base(unittest.TestCase):
    def setUp(self) -> None:
        assert SERVER
        self.assertEqual(call("POST", f"{SERVER.url}/_testbed/reset")[0], 200)


class LookupEventsTest(Base):
    def test_paging_120_events_is_50_50_20(self) -> None:
        post_events([record("alice@example.com", i // 60, i % 60) for i in range(120)])
        ct = client("cloudtrail")
        sizes, token, seen = [], None, []
        while True:
            kwargs = {"NextToken": token} if token else {}
            page = ct.lookup_events(**kwargs)
            sizes.append(len(page["Events"]))
            seen += [e["EventId"] for e in page["Events"]]
            token = page.get("NextToken")
            if not token:
                break
        self.assertEqual(sizes, [50, 50, 20])
        self.assertEqual(len(set(seen)), 120)
        calls = call("GET", f"{SERVER.url}/_testbed/cloudtrail/calls")[1]
        self.assertEqual(len(calls), 3)
        self.assertIsNone(calls[0]["next_token_in"])
        self.assertIsNotNone(calls[1]["next_token_in"])
        self.assertEqual((calls[0]["account_id"], calls[0]["region"]), (ACCOUNT, "us-east-1"))

    def test_window_username_and_order(self) -> None:
        post_events([
            record("alice@example.com", 0, 0, "Early"),
            record("alice@example.com", 10, 0, "AtStart"),
            record("alice@example.com", 15, 0, "Middle", read_only=False),
            record("alice@example.com.evil", 15, 0, "LookAlike"),
            record("alice@example.com", 20, 0, "AtEnd"),
            record("alice@example.com", 30, 0, "Late"),
        ])
        ct = client("cloudtrail")
        events = ct.lookup_events(
            StartTime=datetime(2026, 11, 24, 8, 10, tzinfo=timezone.utc),
            EndTime=datetime(2026, 11, 24, 8, 20, tzinfo=timezone.utc),
            LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "alice@example.com"}],
        )["Events"]
        self.assertEqual([e["EventName"] for e in events], ["AtEnd", "Middle", "AtStart"])  # inclusive, newest first
        middle = events[1]
        self.assertEqual(middle["ReadOnly"], "false")
        self.assertEqual(middle["Username"], "alice@example.com")
        self.assertEqual(middle["EventTime"], datetime(2026, 11, 24, 8, 15, tzinfo=timezone.utc))
        self.assertEqual(json.loads(middle["CloudTrailEvent"])["eventID"], "alice@example.com-15-0")
        # other filters
        read_only = ct.lookup_events(LookupAttributes=[{"AttributeKey": "ReadOnly", "AttributeValue": "false"}])
        self.assertEqual([e["EventName"] for e in read_only["Events"]], ["Middle"])
        # other (account, region) pairs are separate stores
        self.assertEqual(client("cloudtrail").lookup_events(MaxResults=5)["Events"][0]["EventName"], "Late")
        other = boto3.client("cloudtrail", endpoint_url=SERVER.url, region_name="eu-west-1",
                             aws_access_key_id="testing", aws_secret_access_key="testing")
        self.assertEqual(other.lookup_events()["Events"], [])

    def test_bad_requests(self) -> None:
        ct = client("cloudtrail")
        with self.assertRaises(ClientError) as e:
            ct.lookup_events(LookupAttributes=[
                {"AttributeKey": "Username", "AttributeValue": "a"},
                {"AttributeKey": "EventName", "AttributeValue": "b"},
            ])
        self.assertEqual(e.exception.response["Error"]["Code"], "InvalidLookupAttributesException")
        with self.assertRaises(ClientError) as e:
            ct.lookup_events(MaxResults=51)
        self.assertEqual(e.exception.response["Error"]["Code"], "InvalidMaxResultsException")

    def test_throttling(self) -> None:
        call("POST", f"{SERVER.url}/_testbed/cloudtrail/throttle", {"every": 2})
        try:
            ct = client("cloudtrail")
            ct.lookup_events()
            with self.assertRaises(ClientError) as e:
                ct.lookup_events()
            self.assertEqual(e.exception.response["Error"]["Code"], "ThrottlingException")
            self.assertEqual(e.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        finally:
            call("POST", f"{SERVER.url}/_testbed/cloudtrail/throttle", {"every": 0})


class FakeFunction(BaseHTTPRequestHandler):
    """Stands in for `cargo lambda watch`'s invoke API."""

    received: list[tuple[str, Any]] = []

    def do_POST(self) -> None:
        event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeFunction.received.append((self.path, event))
        if isinstance(event, dict) and event.get("fail"):
            status, out = 500, {"errorType": "Throttled", "errorMessage": "slow down"}
        else:
            status, out = 200, {"echo": event}
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


class LambdaForwardingTest(Base):
    @classmethod
    def setUpClass(cls) -> None:
        cls.fn = ThreadingHTTPServer(("127.0.0.1", 0), FakeFunction)
        threading.Thread(target=cls.fn.serve_forever, daemon=True).start()
        os.environ["BG_LAMBDA_FORWARD_URL"] = f"http://127.0.0.1:{cls.fn.server_port}"
        os.environ["BG_LAMBDA_FORWARD_FUNCTION"] = "break-glass"

    @classmethod
    def tearDownClass(cls) -> None:
        cls.fn.shutdown()
        cls.fn.server_close()
        del os.environ["BG_LAMBDA_FORWARD_URL"]

    def setUp(self) -> None:
        super().setUp()
        FakeFunction.received.clear()

    def test_invoke_by_name_and_arn(self) -> None:
        lam = client("lambda")
        for name in ("break-glass", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:break-glass"):
            resp = lam.invoke(FunctionName=name, Payload=json.dumps({"type": "grant"}))
            self.assertEqual(resp["StatusCode"], 200)
            self.assertNotIn("FunctionError", resp)
            self.assertEqual(json.loads(resp["Payload"].read()), {"echo": {"type": "grant"}})
        self.assertEqual([p for p, _ in FakeFunction.received],
                         ["/2015-03-31/functions/break-glass/invocations"] * 2)

    def test_function_error(self) -> None:
        resp = client("lambda").invoke(FunctionName="anything", Payload=json.dumps({"fail": True}))
        self.assertEqual(resp["FunctionError"], "Unhandled")
        self.assertEqual(json.loads(resp["Payload"].read())["errorType"], "Throttled")

    def test_event_invocation_is_forwarded(self) -> None:
        resp = client("lambda").invoke(FunctionName="break-glass", InvocationType="Event", Payload=b'{"n": 1}')
        self.assertEqual(resp["StatusCode"], 202)
        deadline = time.monotonic() + 5
        while not FakeFunction.received and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(FakeFunction.received[0][1], {"n": 1})

    def test_unreachable_function_is_a_service_error(self) -> None:
        os.environ["BG_LAMBDA_FORWARD_URL"] = "http://127.0.0.1:9"  # discard port: refused
        try:
            with self.assertRaises(ClientError) as e:
                client("lambda").invoke(FunctionName="break-glass", Payload=b"{}")
            self.assertEqual(e.exception.response["Error"]["Code"], "ServiceException")
        finally:
            os.environ["BG_LAMBDA_FORWARD_URL"] = f"http://127.0.0.1:{self.fn.server_port}"

    def test_step_functions_runs_lambda_and_ssoadmin_tasks(self) -> None:
        worker = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:break-glass"
        definition = {
            "StartAt": "Instances",
            "States": {
                "Instances": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:ssoadmin:listInstances",
                              "Parameters": {}, "ResultPath": "$.sso", "Next": "Grant"},
                "Grant": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                          "Parameters": {"FunctionName": worker, "Payload": {"type": "grant"}},
                          "ResultSelector": {"out.$": "$.Payload"}, "ResultPath": "$.grant", "Next": "Fail"},
                "Fail": {"Type": "Task", "Resource": worker, "Parameters": {"fail": True},
                         "Catch": [{"ErrorEquals": ["Throttled"], "ResultPath": "$.error", "Next": "Done"}],
                         "End": True},
                "Done": {"Type": "Pass", "End": True},
            },
        }
        sfn = client("stepfunctions")
        machine = sfn.create_state_machine(name="t", definition=json.dumps(definition),
                                           roleArn=f"arn:aws:iam::{ACCOUNT}:role/t")["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine, name="req-1", input="{}")["executionArn"]
        deadline = time.monotonic() + 20
        while (status := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.assertEqual(status["status"], "SUCCEEDED", status)
        output = json.loads(status["output"])  # holds a datetime (CreatedDate): must serialise
        self.assertEqual(output["grant"], {"out": {"echo": {"type": "grant"}}})
        self.assertEqual(output["error"]["Error"], "Throttled")
        self.assertTrue(output["sso"]["Instances"][0]["InstanceArn"].startswith("arn:aws:sso:::instance/"))


    def _token_machine(self, name: str, timeout: dict[str, Any]) -> str:
        worker = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:break-glass"
        definition = {
            "StartAt": "Hold",
            "States": {
                "Hold": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                         "Parameters": {"FunctionName": worker,
                                        "Payload": {"type": "hold", "task_token.$": "$$.Task.Token"}},
                         **timeout, "ResultPath": "$.hold",
                         "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.timeout", "Next": "TimedOut"}],
                         "Next": "Done"},
                "TimedOut": {"Type": "Pass", "End": True},
                "Done": {"Type": "Pass", "End": True},
            },
        }
        return client("stepfunctions").create_state_machine(
            name=name, definition=json.dumps(definition), roleArn=f"arn:aws:iam::{ACCOUNT}:role/t"
        )["stateMachineArn"]

    def _wait_for(self, what: str, check: Any, seconds: float = 10) -> Any:
        deadline = time.monotonic() + seconds
        while not (result := check()):
            self.assertLess(time.monotonic(), deadline, f"timed out waiting for {what}")
            time.sleep(0.05)
        return result

    def _token_of_hold(self) -> str:
        return self._wait_for("the hold task", lambda: next(
            (e["task_token"] for _, e in FakeFunction.received if isinstance(e, dict) and e.get("task_token")), None))

    def _status(self, execution: str) -> dict[str, Any]:
        return client("stepfunctions").describe_execution(executionArn=execution)

    def test_a_callback_completes_a_token_wait(self) -> None:
        sfn = client("stepfunctions")
        machine = self._token_machine("cb", {"TimeoutSeconds": 60})
        execution = sfn.start_execution(stateMachineArn=machine, name="cb-1", input="{}")["executionArn"]
        sfn.send_task_success(taskToken=self._token_of_hold(), output=json.dumps({"release": True}))
        done = self._wait_for("the execution", lambda: (d := self._status(execution))["status"] != "RUNNING" and d)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        self.assertEqual(json.loads(done["output"])["hold"], {"release": True})

    def test_the_timeout_path_is_states_timeout(self) -> None:
        sfn = client("stepfunctions")
        machine = self._token_machine("to", {"TimeoutSecondsPath": "$.wait"})
        execution = sfn.start_execution(stateMachineArn=machine, name="to-1", input=json.dumps({"wait": 1}))["executionArn"]
        done = self._wait_for("the timeout", lambda: (d := self._status(execution))["status"] != "RUNNING" and d)
        self.assertEqual(done["status"], "SUCCEEDED", done)
        self.assertEqual(json.loads(done["output"])["timeout"]["Error"], "States.Timeout")

    def test_stop_execution_ends_a_token_wait_at_once(self) -> None:
        # moto 5.2.5 alone leaves the execution RUNNING until the 120 s wait times out.
        sfn = client("stepfunctions")
        machine = self._token_machine("stop", {"TimeoutSeconds": 120})
        execution = sfn.start_execution(stateMachineArn=machine, name="stop-1", input="{}")["executionArn"]
        token = self._token_of_hold()
        sfn.stop_execution(executionArn=execution, error="Stopped", cause="test")
        done = self._wait_for("the stop", lambda: (d := self._status(execution))["status"] != "RUNNING" and d)
        self.assertEqual(done["status"], "ABORTED", done)
        with self.assertRaises(ClientError, msg="a stopped execution's token is no longer valid"):
            sfn.send_task_success(taskToken=token, output="{}")


class CallsTest(Base):
    def test_calls_are_logged_with_their_time(self) -> None:
        before = time.time()
        client("sso-admin").list_instances()
        status, calls = call("GET", f"{SERVER.url}/_testbed/calls?operation=ListInstances")
        self.assertEqual(status, 200)
        self.assertEqual(len(calls), 1, calls)
        self.assertGreaterEqual(calls[0]["at"], before)
        self.assertEqual(call("DELETE", f"{SERVER.url}/_testbed/calls")[0], 200)
        self.assertEqual(call("GET", f"{SERVER.url}/_testbed/calls")[1], [])


class SsoAdminTest(Base):
    def test_permission_set_arn_has_the_aws_shape(self) -> None:
        sso = client("sso-admin")
        instance = sso.list_instances()["Instances"][0]["InstanceArn"]
        arn = sso.create_permission_set(InstanceArn=instance, Name="BreakGlassAdmin")["PermissionSet"]["PermissionSetArn"]
        ins_id = instance.rsplit("/", 1)[-1]
        self.assertRegex(arn, rf"^arn:aws:sso:::permissionSet/{ins_id}/ps-[0-9a-z]{{16}}$")
        self.assertEqual(sso.describe_permission_set(InstanceArn=instance, PermissionSetArn=arn)
                         ["PermissionSet"]["Name"], "BreakGlassAdmin")


class FaultsTest(Base):
    def test_errors_overrides_and_matching(self) -> None:
        sso = client("sso-admin")
        instance = sso.list_instances()["Instances"][0]["InstanceArn"]
        url = f"{SERVER.url}/_testbed/faults"
        call("POST", url, {"operation": "ListPermissionSets", "times": 1, "status": 400, "code": "ThrottlingException"})
        call("POST", url, {"operation": "DescribeAccountAssignmentCreationStatus", "times": 1,
                           "body": {"AccountAssignmentCreationStatus": {"Status": "FAILED", "FailureReason": "x"}}})
        call("POST", url, {"operation": "SendEmail", "times": 1, "status": 500, "code": "InternalFailure"})
        call("POST", url, {"operation": "ListInstances", "times": 1, "status": 500, "match": "no-such-body"})
        with self.assertRaises(sso.exceptions.ClientError) as e:
            sso.list_permission_sets(InstanceArn=instance)
        self.assertEqual(e.exception.response["Error"]["Code"], "ThrottlingException")
        sso.list_permission_sets(InstanceArn=instance)  # used up
        status = sso.describe_account_assignment_creation_status(
            InstanceArn=instance, AccountAssignmentCreationRequestId="0c2d6b1e-1a2b-4c3d-8e9f-0123456789ab")["AccountAssignmentCreationStatus"]
        self.assertEqual(status["Status"], "FAILED")
        ses = client("ses")
        ses.verify_email_identity(EmailAddress="a@example.com")
        with self.assertRaises(ses.exceptions.ClientError) as e:
            ses.send_email(Source="a@example.com", Destination={"ToAddresses": ["b@example.com"]},
                           Message={"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "t"}}})
        self.assertEqual(e.exception.response["Error"]["Code"], "InternalFailure")
        sso.list_instances()  # the rule's match does not hit
        hits = call("GET", url)[1]["hits"]
        self.assertEqual([h["operation"] for h in hits],
                         ["ListPermissionSets", "DescribeAccountAssignmentCreationStatus", "SendEmail"])


    def test_a_slow_call_still_succeeds(self) -> None:
        sso = client("sso-admin")
        instance = sso.list_instances()["Instances"][0]["InstanceArn"]
        arn = sso.create_permission_set(InstanceArn=instance, Name="Slow")["PermissionSet"]["PermissionSetArn"]
        call("POST", f"{SERVER.url}/_testbed/faults",
             {"operation": "PutInlinePolicyToPermissionSet", "times": 1, "slow_seconds": 0.5})
        started = time.monotonic()
        sso.put_inline_policy_to_permission_set(InstanceArn=instance, PermissionSetArn=arn, InlinePolicy='{"a": 1}')
        self.assertGreaterEqual(time.monotonic() - started, 0.5)
        self.assertEqual(sso.get_inline_policy_for_permission_set(InstanceArn=instance, PermissionSetArn=arn)
                         ["InlinePolicy"], '{"a": 1}')


class SesOutboxTest(Base):
    def test_send_email_and_raw(self) -> None:
        ses = client("ses")
        ses.verify_email_identity(EmailAddress="break-glass@example.com")
        ses.send_email(
            Source="break-glass@example.com",
            Destination={"ToAddresses": ["security@example.com"]},
            Message={"Subject": {"Data": "report"},
                     "Body": {"Text": {"Data": "plain"}, "Html": {"Data": "<p>html</p>"}}},
        )
        from email.message import EmailMessage

        raw = EmailMessage()
        raw["Subject"] = "raw report"
        raw["To"] = "security@example.com"
        raw.set_content("plain body")
        raw.add_alternative("<p>html body</p>", subtype="html")
        raw.add_attachment(b'{"events": 1}', maintype="application", subtype="json", filename="bg-1.json")
        ses.send_raw_email(Source="break-glass@example.com", Destinations=["security@example.com"],
                           RawMessage={"Data": raw.as_bytes()})
        messages = call("GET", f"{SERVER.url}/_testbed/ses/messages")[1]
        self.assertEqual([m["type"] for m in messages], ["email", "raw"])
        self.assertEqual((messages[0]["subject"], messages[0]["text"], messages[0]["html"]),
                         ("report", "plain", "<p>html</p>"))
        self.assertEqual(messages[0]["destinations"], {"ToAddresses": ["security@example.com"]})
        self.assertEqual(messages[1]["destinations"], ["security@example.com"])
        self.assertIn("Subject: raw report", messages[1]["raw"])
        self.assertEqual((messages[1]["subject"], messages[1]["text"].strip(), messages[1]["html"].strip()),
                         ("raw report", "plain body", "<p>html body</p>"))
        attachment = messages[1]["attachments"][0]
        self.assertEqual((attachment["filename"], attachment["content_type"]), ("bg-1.json", "application/json"))
        self.assertEqual(json.loads(attachment["content"]), {"events": 1})


def make_table(name: str = "bg") -> Any:
    """A table shaped like break-glass's: pk/sk, and a keys-only `live` index."""
    ddb = client("dynamodb")
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "live")],
        GlobalSecondaryIndexes=[{
            "IndexName": "live",
            "KeySchema": [{"AttributeName": "live", "KeyType": "HASH"}, {"AttributeName": "pk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }],
    )
    return ddb


def s(value: str) -> dict[str, str]:
    return {"S": value}


class DynamoDbReadsTest(Base):
    def test_reads_are_counted_by_operation_and_index(self) -> None:
        ddb = make_table()
        for i in range(3):
            ddb.put_item(TableName="bg", Item={"pk": s(f"lease#{i}"), "sk": s("lease"), "live": s("lease")})
        for v in range(4):
            ddb.put_item(TableName="bg", Item={"pk": s("bg-1"), "sk": s(f"audit#{v:06d}")})
        self.assertEqual(call("DELETE", f"{SERVER.url}/_testbed/dynamodb/reads")[0], 200)
        live = ddb.query(TableName="bg", IndexName="live", KeyConditionExpression="live = :k",
                         ExpressionAttributeValues={":k": s("lease")})
        self.assertEqual(live["Count"], 3)
        ddb.query(TableName="bg", KeyConditionExpression="pk = :p AND begins_with(sk, :a)",
                  ExpressionAttributeValues={":p": s("bg-1"), ":a": s("audit#")})
        ddb.get_item(TableName="bg", Key={"pk": s("lease#0"), "sk": s("lease")})
        ddb.get_item(TableName="bg", Key={"pk": s("lease#9"), "sk": s("lease")})  # none
        ddb.scan(TableName="bg", FilterExpression="begins_with(pk, :l)", ExpressionAttributeValues={":l": s("lease#")})
        with self.assertRaises(ClientError):  # an error is no read
            ddb.query(TableName="bg", IndexName="nope", KeyConditionExpression="live = :k",
                      ExpressionAttributeValues={":k": s("lease")})
        status, reads = call("GET", f"{SERVER.url}/_testbed/dynamodb/reads")
        self.assertEqual(status, 200)
        self.assertEqual(reads["calls"], {"Query": 2, "GetItem": 2, "Scan": 1})
        self.assertEqual(reads["items"], {"Query": 7, "GetItem": 1, "Scan": 3})
        self.assertEqual(reads["items_by_index"], {"live": 3, "table": 7})
        self.assertEqual(reads["scanned"], {"Query": 7, "GetItem": 1, "Scan": 7}, "a Scan reads every item")
        self.assertEqual(reads["by_operation_index"]["Scan table"], {"calls": 1, "items": 3, "scanned": 7})
        self.assertEqual(call("DELETE", f"{SERVER.url}/_testbed/dynamodb/reads")[0], 200)
        ddb.get_item(TableName="bg", Key={"pk": s("lease#0"), "sk": s("lease")})
        self.assertEqual(call("GET", f"{SERVER.url}/_testbed/dynamodb/reads")[1]["calls"], {"GetItem": 1})
        call("POST", f"{SERVER.url}/_testbed/reset")
        self.assertEqual(call("GET", f"{SERVER.url}/_testbed/dynamodb/reads")[1]["calls"], {})

    def test_batch_and_transaction_reads(self) -> None:
        ddb = make_table()
        ddb.put_item(TableName="bg", Item={"pk": s("a"), "sk": s("request")})
        keys = [{"pk": s("a"), "sk": s("request")}, {"pk": s("b"), "sk": s("request")}]
        ddb.batch_get_item(RequestItems={"bg": {"Keys": keys}})
        ddb.transact_get_items(TransactItems=[{"Get": {"TableName": "bg", "Key": k}} for k in keys])
        reads = call("GET", f"{SERVER.url}/_testbed/dynamodb/reads")[1]
        self.assertEqual(reads["calls"], {"BatchGetItem": 1, "TransactGetItems": 1})
        self.assertEqual(reads["items"], {"BatchGetItem": 1, "TransactGetItems": 1})


class DynamoDbScaleTest(Base):
    """The scale patches (motoext.patch_dynamodb_scale) answer as moto does."""

    def test_scan_pages_and_queries_follow_puts_and_deletes(self) -> None:
        ddb = make_table()
        expected = set()
        for i in range(60):
            ddb.put_item(TableName="bg", Item={"pk": s(f"p{i % 7}"), "sk": s(f"s{i:03d}"), "n": {"N": str(i)}})
            expected.add((f"p{i % 7}", f"s{i:03d}"))

        def scanned(limit: int) -> list[tuple[str, str]]:
            out, start = [], None
            while True:
                page = ddb.scan(TableName="bg", Limit=limit, **({"ExclusiveStartKey": start} if start else {}))
                out += [(i["pk"]["S"], i["sk"]["S"]) for i in page["Items"]]
                start = page.get("LastEvaluatedKey")
                if not start:
                    return out

        self.assertEqual(scanned(7), sorted(expected), "pages in key order, each item once")
        # Changes after the order was kept: a new item, a replaced one, a deleted one, and
        # one transaction's put and delete.
        ddb.put_item(TableName="bg", Item={"pk": s("p0"), "sk": s("s000a")})
        ddb.put_item(TableName="bg", Item={"pk": s("p1"), "sk": s("s001"), "n": {"N": "100"}})
        ddb.delete_item(TableName="bg", Key={"pk": s("p2"), "sk": s("s002")})
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "bg", "Item": {"pk": s("p9"), "sk": s("s900")}}},
            {"Delete": {"TableName": "bg", "Key": {"pk": s("p3"), "sk": s("s003")}}},
        ])
        expected |= {("p0", "s000a"), ("p9", "s900")}
        expected -= {("p2", "s002"), ("p3", "s003")}
        self.assertEqual(scanned(5), sorted(expected))
        self.assertEqual(scanned(1000), sorted(expected))
        page = ddb.query(TableName="bg", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": s("p1")})
        self.assertEqual([i["sk"]["S"] for i in page["Items"]], sorted(k for p, k in expected if p == "p1"))
        self.assertEqual(page["Items"][0]["n"], {"N": "100"}, "the replaced item is read")
        backwards = ddb.query(TableName="bg", KeyConditionExpression="pk = :p AND sk > :k", ScanIndexForward=False,
                              ExpressionAttributeValues={":p": s("p0"), ":k": s("s000")})
        self.assertEqual([i["sk"]["S"] for i in backwards["Items"]],
                         sorted((k for p, k in expected if p == "p0" and k > "s000"), reverse=True))
        self.assertEqual(ddb.query(TableName="bg", KeyConditionExpression="pk = :p",
                                   ExpressionAttributeValues={":p": s("nope")})["Items"], [])

    def test_a_failed_transaction_changes_nothing(self) -> None:
        ddb = make_table()
        ddb.put_item(TableName="bg", Item={"pk": s("r"), "sk": s("request"), "version": {"N": "1"}})
        ddb.put_item(TableName="bg", Item={"pk": s("gone"), "sk": s("x")})
        with self.assertRaises(ClientError) as e:
            ddb.transact_write_items(TransactItems=[
                {"Update": {"TableName": "bg", "Key": {"pk": s("r"), "sk": s("request")},
                            "UpdateExpression": "SET version = :two", "ExpressionAttributeValues": {":two": {"N": "2"}}}},
                {"Put": {"TableName": "bg", "Item": {"pk": s("r"), "sk": s("audit#000002")}}},
                {"Delete": {"TableName": "bg", "Key": {"pk": s("gone"), "sk": s("x")}}},
                {"Put": {"TableName": "bg", "Item": {"pk": s("lease#1"), "sk": s("lease")},
                         "ConditionExpression": "attribute_exists(pk)"}},
            ])
        self.assertEqual(e.exception.response["Error"]["Code"], "TransactionCanceledException")
        items = ddb.scan(TableName="bg")["Items"]
        self.assertEqual(sorted((i["pk"]["S"], i["sk"]["S"]) for i in items), [("gone", "x"), ("r", "request")])
        self.assertEqual(ddb.get_item(TableName="bg", Key={"pk": s("r"), "sk": s("request")})["Item"]["version"],
                         {"N": "1"})
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": "bg", "Key": {"pk": s("r"), "sk": s("request")},
                        "UpdateExpression": "SET version = :two", "ConditionExpression": "version = :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}, ":two": {"N": "2"}}}},
            {"Put": {"TableName": "bg", "Item": {"pk": s("r"), "sk": s("audit#000002")}}},
        ])
        self.assertEqual(ddb.get_item(TableName="bg", Key={"pk": s("r"), "sk": s("request")})["Item"]["version"],
                         {"N": "2"})
        self.assertEqual(len(ddb.scan(TableName="bg")["Items"]), 3)

    def test_bulk_items_and_organization_accounts(self) -> None:
        ddb = make_table()
        items = [{"pk": s(f"bg-{i}"), "sk": s("request"), "day": s("2026-01-01"), "n": {"N": str(i)},
                  "flag": {"BOOL": True}, "l": {"L": [s("x")]}} for i in range(30)]
        status, body = call("POST", f"{SERVER.url}/_testbed/dynamodb/items", {"table": "bg", "items": items})
        self.assertEqual((status, body), (200, {"put": 30}))
        got = ddb.get_item(TableName="bg", Key={"pk": s("bg-7"), "sk": s("request")})["Item"]
        self.assertEqual(got, items[7])
        self.assertEqual(ddb.scan(TableName="bg", Select="COUNT")["Count"], 30)
        status, _ = call("POST", f"{SERVER.url}/_testbed/dynamodb/items", {"table": "bg", "items": [{"pk": s("x")}]})
        self.assertEqual(status, 400, "an item without its range key")

        org = client("organizations")
        org.create_organization(FeatureSet="ALL")
        accounts = [{"id": f"10000000000{i}", "name": f"acct-{i}", "email": f"acct{i}@example.com"} for i in range(3)]
        self.assertEqual(call("POST", f"{SERVER.url}/_testbed/organizations/accounts", {"accounts": accounts}),
                         (200, {"created": 3}))
        listed = {a["Id"]: a["Name"] for page in org.get_paginator("list_accounts").paginate() for a in page["Accounts"]}
        self.assertEqual({k: v for k, v in listed.items() if k.startswith("1000")},
                         {a["id"]: a["name"] for a in accounts})
        self.assertEqual(org.describe_account(AccountId="100000000001")["Account"]["Email"], "acct1@example.com")
        self.assertEqual(call("POST", f"{SERVER.url}/_testbed/organizations/accounts", {"accounts": accounts[:1]})[0],
                         400, "the id is taken")


class SlackFakeTest(unittest.TestCase):
    def setUp(self) -> None:
        self.slack = slackfake.SlackFakeServer().__enter__()
        self.auth = {"Authorization": "Bearer xoxb-test", "Content-Type": "application/json"}

    def tearDown(self) -> None:
        self.slack.__exit__(None, None, None)

    def test_users_info(self) -> None:
        user = {"id": "U0ALICE0001", "team_id": "T0TESTTEAM", "name": "alice", "is_bot": False,
                "deleted": False, "is_restricted": False, "is_ultra_restricted": False,
                "profile": {"email": "alice@example.com"}}
        call("POST", f"{self.slack.url}/_testbed/users", {"U0ALICE0001": user})
        self.assertEqual(call("GET", f"{self.slack.url}/api/users.info?user=U0ALICE0001", headers=self.auth)[1],
                         {"ok": True, "user": user})
        form = {"Authorization": "Bearer xoxb-test", "Content-Type": "application/x-www-form-urlencoded"}
        self.assertEqual(call("POST", f"{self.slack.url}/api/users.info", b"user=U0ALICE0001", form)[1]["user"], user)
        self.assertEqual(call("GET", f"{self.slack.url}/api/users.info?user=U0NOBODY01", headers=self.auth)[1],
                         {"ok": False, "error": "user_not_found"})
        self.assertEqual(call("GET", f"{self.slack.url}/api/users.info?user=U0ALICE0001")[1],
                         {"ok": False, "error": "not_authed"})

    def test_post_message_and_response_urls(self) -> None:
        first = call("POST", f"{self.slack.url}/api/chat.postMessage", {"channel": "C1", "text": "a"}, self.auth)[1]
        second = call("POST", f"{self.slack.url}/api/chat.postMessage", {"channel": "C1", "text": "b"}, self.auth)[1]
        self.assertTrue(first["ok"])
        self.assertEqual(first["channel"], "C1")
        self.assertLess(float(first["ts"]), float(second["ts"]))
        self.assertEqual(call("POST", f"{self.slack.url}/response/x", {"text": "hi"})[0], 200)
        call("POST", f"{self.slack.url}/_testbed/fail-response-urls", {"fail": True})
        self.assertEqual(call("POST", f"{self.slack.url}/response/x", {"text": "hi"})[0], 500)
        recorded = call("GET", f"{self.slack.url}/_testbed/requests")[1]
        self.assertEqual([r["path"] for r in recorded],
                         ["/api/chat.postMessage", "/api/chat.postMessage", "/response/x", "/response/x"])
        self.assertEqual(recorded[0]["body"], {"channel": "C1", "text": "a"})
        call("DELETE", f"{self.slack.url}/_testbed/requests")
        self.assertEqual(call("GET", f"{self.slack.url}/_testbed/requests")[1], [])


class SigningTest(unittest.TestCase):
    def test_slack_documented_example(self) -> None:
        body = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
                b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
                b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
                b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
        self.assertEqual(signing.sign("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, body),
                         "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503")


if __name__ == "__main__":
    unittest.main()
