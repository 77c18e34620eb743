"""moto server with the test-only extensions break-glass needs (moto 5.2.5).

    python testbed/motoext.py --port N      # N may be 0: prints "READY port=<chosen>"

Serves moto on 127.0.0.1 and fills these gaps (docs/architecture.md, "The test bed"):

* Step Functions executes ASL (`execute_state_machine`), Lambda never uses docker.
* Every Lambda ``Invoke`` -- by name or ARN, the function need not exist in moto -- is
  forwarded to ``$BG_LAMBDA_FORWARD_URL/2015-03-31/functions/$BG_LAMBDA_FORWARD_FUNCTION/invocations``
  (``cargo lambda watch``). A 500 from there is a *function error*: Step Functions sees
  ``errorType`` as the error name, as with real Lambda.
* ``cloudtrail:LookupEvents`` served from fixture records (``/_testbed/cloudtrail/...``).
* ``arn:aws:states:::aws-sdk:ssoadmin:*`` tasks (boto3 calls the service ``sso-admin``).
* ``GET /_testbed/ses/messages``: every e-mail sent through SES (v1 or v2), text and HTML kept
  (raw MIME mails decoded too: subject, text, html, attachments).
* Permission set ARNs have the AWS shape ``arn:aws:sso:::permissionSet/ssoins-…/ps-…``.
* ``DescribeExecution`` no longer fails (HTTP 500) when the output holds a timestamp.
* ``StopExecution`` ends an execution that waits on a task token (``.waitForTaskToken``) at
  once; moto 5.2.5 leaves it RUNNING until the wait times out.
* ``GET /_testbed/calls?operation=X``: when each AWS operation reached the server (the last
  10 000 calls), e.g. to time End access now → ``DeleteAccountAssignment``.
* ``GET /_testbed/dynamodb/reads``: every DynamoDB read the server answered (GetItem,
  BatchGetItem, Query, Scan, TransactGetItems), counted: calls and items returned by operation,
  items returned by index for Query and Scan ("table" without an IndexName), and the items each
  Query or Scan evaluated (``ScannedCount``, what DynamoDB bills). moto's own figures do not
  help: it walks the whole table on every Query and reports constant consumed capacity.
* DynamoDB at scale (testbed/scale.py seeds a million items): the same answers as moto's,
  without its whole-table sort on every Query and Scan page, its walk from the table's start
  to a Scan's ExclusiveStartKey, and its deep copy of every table a TransactWriteItems touches.
* Seeding in bulk through moto's backend: DynamoDB items (PutItem semantics, thousands per
  call) and Organizations accounts with the ids asked for (a policy file names account ids
  before the accounts exist; moto's CreateAccount picks random ones).
* ``POST /_testbed/reset``: moto reset plus our stores.

Fixture endpoints (JSON):

    POST   /_testbed/cloudtrail/events    {"account_id", "region", "events": [S3-style records]}
    DELETE /_testbed/cloudtrail/events
    GET    /_testbed/cloudtrail/calls     every LookupEvents call (DELETE clears)
    POST   /_testbed/cloudtrail/throttle  {"every": N}: every Nth call → ThrottlingException
                                          (also BG_CLOUDTRAIL_THROTTLE_EVERY=N at start)
    GET    /_testbed/ses/messages
    GET    /_testbed/calls?operation=X    [{"operation", "at"}] (epoch seconds); DELETE clears
    GET    /_testbed/dynamodb/reads       {"calls": {"Query": 3, ...}, "items": {"Query": 12, ...},
                                           "items_by_index": {"live": 12, "table": 4, ...},
                                           "scanned": {"Query": 12, "Scan": 40000, ...},
                                           "by_operation_index": {"Query live": {"calls",
                                           "items", "scanned"}, ...}}; DELETE clears
    POST   /_testbed/dynamodb/items       {"table", "items": [DynamoDB JSON items]}: PutItem
                                          each (no condition) → {"put": N}
    POST   /_testbed/organizations/accounts  {"accounts": [{"id", "name", "email"}]}: created in
                                          the organization (it must exist) → {"created": N}
    POST   /_testbed/reset
    GET    /_testbed/health

Test-only: no auth, everything in memory. Never listen anywhere but loopback.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any

HOST = "127.0.0.1"
DEFAULT_ACCOUNT = "123456789012"  # moto's, and the test bed's
DEFAULT_REGION = "us-east-1"
MOTO_CONFIG = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


# --------------------------------------------------------------------------- Lambda


class LambdaForwardError(Exception):
    """Raised inside moto's Invoke when cargo lambda watch cannot be reached."""


def forward_invoke(body: bytes, invocation_type: str) -> tuple[int, bytes]:
    """POST one Invoke to the runtime emulator; returns (HTTP status, body)."""
    base = os.environ["BG_LAMBDA_FORWARD_URL"].rstrip("/")
    function = os.environ.get("BG_LAMBDA_FORWARD_FUNCTION", "break-glass")
    timeout = float(os.environ.get("BG_LAMBDA_FORWARD_TIMEOUT", "900"))
    req = urllib.request.Request(
        f"{base}/2015-03-31/functions/{function}/invocations",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, payload = resp.status, resp.read()
    except urllib.error.HTTPError as e:  # non-2xx still carries a body
        status, payload = e.code, e.read()
    except (OSError, urllib.error.URLError) as e:  # refused, reset, timeout
        raise LambdaForwardError(f"{type(e).__name__}: {e}") from e
    log(f"lambda invoke ({invocation_type}) -> {status} in {time.monotonic() - started:.3f}s")
    return status, payload


def patch_lambda() -> None:
    from moto.awslambda.exceptions import LambdaClientError
    from moto.awslambda.models import LambdaBackend
    from moto.awslambda_simple.models import LambdaSimpleBackend

    class ServiceException(LambdaClientError):
        code = 500

        def __init__(self, message: str):
            super().__init__("ServiceException", message)

    def forwarding_invoke(self, function_name, qualifier, body, headers, response_headers):  # type: ignore[no-untyped-def]
        if body is None:
            body = b"{}"
        elif isinstance(body, str):
            body = body.encode("utf-8")
        inv_type = headers.get("X-Amz-Invocation-Type") or "RequestResponse"

        if inv_type == "Event":
            # Fire and forget, as Lambda does; errors only reach our log.
            def run() -> None:
                try:
                    forward_invoke(body, inv_type)
                except LambdaForwardError as e:
                    log(f"lambda async invoke failed: {e}")

            threading.Thread(target=run, daemon=True).start()
            return b""
        if inv_type == "DryRun":
            return b""

        try:
            status, payload = forward_invoke(body, inv_type)
        except LambdaForwardError as e:
            raise ServiceException(f"break-glass testbed: cannot reach the function: {e}")
        if status == 500:
            # cargo lambda watch reports a function error as HTTP 500 + {"errorType", ...}.
            # Real Lambda answers 200 + X-Amz-Function-Error; moto's SFN parser then raises
            # a task failure named after errorType.
            try:
                json.loads(payload)
            except ValueError:
                payload = json.dumps(
                    {"errorType": "Unhandled", "errorMessage": payload.decode("utf-8", "replace")}
                ).encode()
            response_headers["x-amz-function-error"] = "Unhandled"
        elif status != 200:
            raise ServiceException(
                f"break-glass testbed: runtime emulator answered HTTP {status}: "
                + payload[:500].decode("utf-8", "replace")
            )
        response_headers["Content-Length"] = str(len(payload))
        return payload

    # With use_docker=false moto routes Invoke to LambdaSimpleBackend (it echoes the
    # payload back), otherwise to LambdaBackend: patch both.
    for cls in (LambdaBackend, LambdaSimpleBackend):
        original = cls.invoke

        def invoke(self, *args, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            if os.environ.get("BG_LAMBDA_FORWARD_URL"):
                return forwarding_invoke(self, *args, **kwargs)
            return _original(self, *args, **kwargs)

        cls.invoke = invoke


# ----------------------------------------------------------------------- CloudTrail

LOOKUP_KEYS = {
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
}
PAGE_MAX = 50


class CloudTrailStore:
    """Fixture CloudTrail records per (account id, region), plus a log of LookupEvents calls."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.calls: list[dict[str, Any]] = []
        self.seq = itertools.count()  # insertion order breaks eventTime ties
        self.throttle_every = int(os.environ.get("BG_CLOUDTRAIL_THROTTLE_EVERY") or 0)
        self.call_count = 0

    def add(self, account_id: str, region: str, records: list[dict[str, Any]]) -> int:
        with self.lock:
            bucket = self.events.setdefault((account_id, region), [])
            for record in records:
                bucket.append(to_lookup_event(record, next(self.seq)))
            return len(records)

    def clear(self) -> None:
        with self.lock:
            self.events.clear()

    def reset(self) -> None:
        with self.lock:
            self.events.clear()
            self.calls.clear()
            self.call_count = 0


def parse_time(value: Any) -> float:
    """Epoch seconds from a JSON-protocol timestamp (number) or an RFC 3339 string."""
    if isinstance(value, (int, float)):
        return float(value)
    dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def username_of(identity: dict[str, Any]) -> str | None:
    """The LookupEvents ``Username`` CloudTrail derives from a userIdentity."""
    kind = identity.get("type")
    if kind == "AssumedRole":
        arn = identity.get("arn") or ""
        return arn.rsplit("/", 1)[-1] if "/" in arn else None
    if kind == "IAMUser":
        return identity.get("userName")
    if kind == "Root":
        return identity.get("userName") or "root"
    return identity.get("userName")


def to_lookup_event(record: dict[str, Any], seq: int) -> dict[str, Any]:
    """Index one S3-style CloudTrail record: the LookupEvents shape plus filter keys."""
    identity = record.get("userIdentity") or {}
    resources = [
        {"ResourceType": r.get("type"), "ResourceName": r.get("ARN")}
        for r in record.get("resources") or []
    ]
    read_only = record.get("readOnly")
    event = {
        "EventId": record.get("eventID"),
        "EventName": record.get("eventName"),
        "ReadOnly": None if read_only is None else str(bool(read_only)).lower(),
        "AccessKeyId": identity.get("accessKeyId"),
        "EventTime": parse_time(record["eventTime"]),
        "EventSource": record.get("eventSource"),
        "Username": username_of(identity),
        "Resources": resources,
        "CloudTrailEvent": json.dumps(record),
    }
    # Best effort for ResourceName: top-level string request parameters count too.
    names = {r["ResourceName"] for r in resources if r["ResourceName"]}
    params = record.get("requestParameters")
    if isinstance(params, dict):
        names |= {v for v in params.values() if isinstance(v, str)}
    return {
        "seq": seq,
        "event": {k: v for k, v in event.items() if v is not None},
        "resource_types": {r["ResourceType"] for r in resources if r["ResourceType"]},
        "resource_names": names,
    }


def matches(entry: dict[str, Any], key: str, value: str) -> bool:
    if key == "ResourceType":
        return value in entry["resource_types"]
    if key == "ResourceName":
        return value in entry["resource_names"]
    return entry["event"].get(key) == value


STORE = CloudTrailStore()


def patch_cloudtrail() -> None:
    from moto.cloudtrail.responses import CloudTrailResponse
    from moto.core.exceptions import JsonRESTError

    def fail(code: str, message: str) -> JsonRESTError:
        return JsonRESTError(code, message)

    def lookup_events(self: CloudTrailResponse) -> str:
        params = json.loads(self.body or "{}")
        attrs = params.get("LookupAttributes") or []
        token = params.get("NextToken")
        with STORE.lock:
            STORE.call_count += 1
            throttled = bool(STORE.throttle_every and STORE.call_count % STORE.throttle_every == 0)
            STORE.calls.append(
                {
                    "account_id": self.current_account,
                    "region": self.region,
                    "at": time.time(),
                    "start_time": params.get("StartTime"),
                    "end_time": params.get("EndTime"),
                    "lookup_attributes": attrs,
                    "max_results": params.get("MaxResults"),
                    "next_token_in": token,
                    "throttled": throttled,
                }
            )
        if throttled:
            raise fail("ThrottlingException", "Rate exceeded")

        if len(attrs) > 1:
            raise fail(
                "InvalidLookupAttributesException",
                "You cannot specify more than one lookup attribute per request.",
            )
        for attr in attrs:
            if attr.get("AttributeKey") not in LOOKUP_KEYS:
                raise fail(
                    "InvalidLookupAttributesException",
                    f"Invalid attribute key: {attr.get('AttributeKey')}",
                )
        max_results = params.get("MaxResults", PAGE_MAX)
        if not isinstance(max_results, int) or not 1 <= max_results <= PAGE_MAX:
            raise fail("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
        start = parse_time(params["StartTime"]) if "StartTime" in params else float("-inf")
        end = parse_time(params["EndTime"]) if "EndTime" in params else float("inf")
        if start > end:
            raise fail("InvalidTimeRangeException", "StartTime is after EndTime.")

        offset = 0
        if token:
            try:
                offset = int(json.loads(base64.b64decode(token))["offset"])
            except (ValueError, KeyError, TypeError):
                raise fail("InvalidNextTokenException", "Invalid NextToken.")

        with STORE.lock:
            entries = list(STORE.events.get((self.current_account, self.region), []))
        selected = [
            e
            for e in entries
            if start <= e["event"]["EventTime"] <= end
            and all(matches(e, a["AttributeKey"], a.get("AttributeValue")) for a in attrs)
        ]
        selected.sort(key=lambda e: (e["event"]["EventTime"], e["seq"]), reverse=True)
        page = selected[offset : offset + max_results]
        result: dict[str, Any] = {"Events": [e["event"] for e in page]}
        if offset + max_results < len(selected):
            next_offset = {"offset": offset + max_results}
            result["NextToken"] = base64.b64encode(json.dumps(next_offset).encode()).decode()
        return json.dumps(result)

    CloudTrailResponse.lookup_events = lookup_events


# ---------------------------------------------------------------------------- SES

_ses_local = threading.local()  # text/html of the SendEmail being handled on this thread
_ses_seq = itertools.count()


def patch_ses() -> None:
    """Keep both text and HTML of SendEmail (moto keeps only one) and a global send order."""
    from moto.ses.models import SESBackend
    from moto.ses.responses import EmailResponse
    from moto.sesv2.responses import SESV2Response

    original_v1 = EmailResponse.send_email
    original_v2 = SESV2Response.send_email
    original_send = SESBackend.send_email
    original_raw = SESBackend.send_raw_email

    def v1_send_email(self):  # type: ignore[no-untyped-def]
        _ses_local.parts = (
            self._get_param("Message.Body.Text.Data"),
            self._get_param("Message.Body.Html.Data"),
        )
        try:
            return original_v1(self)
        finally:
            _ses_local.parts = None

    def v2_send_email(self):  # type: ignore[no-untyped-def]
        body = ((json.loads(self.body or "{}").get("Content") or {}).get("Simple") or {}).get(
            "Body"
        ) or {}
        _ses_local.parts = (
            (body.get("Text") or {}).get("Data"),
            (body.get("Html") or {}).get("Data"),
        )
        try:
            return original_v2(self)
        finally:
            _ses_local.parts = None

    def send_email(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        message = original_send(self, *args, **kwargs)
        message.tb_parts = getattr(_ses_local, "parts", None)
        message.tb_seq = next(_ses_seq)
        return message

    def send_raw_email(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        message = original_raw(self, *args, **kwargs)
        message.tb_seq = next(_ses_seq)
        return message

    EmailResponse.send_email = v1_send_email
    SESV2Response.send_email = v2_send_email
    SESBackend.send_email = send_email
    SESBackend.send_raw_email = send_raw_email


def raw_parts(raw: str) -> dict[str, Any]:
    """Subject, text and HTML bodies and attachments of a raw MIME mail, decoded."""
    import email
    import email.policy

    mime = email.message_from_string(raw, policy=email.policy.default)
    out: dict[str, Any] = {"subject": str(mime["Subject"] or ""), "text": None, "html": None}
    attachments = []
    for part in mime.walk():
        if part.is_multipart():
            continue
        if part.is_attachment():
            content = part.get_content()
            if isinstance(content, bytes):
                content = content.decode("utf-8", errors="replace")
            attachments.append(
                {
                    "filename": part.get_filename(),
                    "content_type": part.get_content_type(),
                    "content": content,
                }
            )
        elif part.get_content_type() == "text/plain":
            out["text"] = part.get_content()
        elif part.get_content_type() == "text/html":
            out["html"] = part.get_content()
    out["attachments"] = attachments
    return out


def ses_messages() -> list[dict[str, Any]]:
    from moto.ses.models import Message, RawMessage, ses_backends

    out = []
    for account_id, regions in list(ses_backends.items()):
        for region, backend in list(regions.items()):
            for m in list(backend.sent_messages):
                item: dict[str, Any] = {
                    "id": getattr(m, "id", None),
                    "account_id": account_id,
                    "region": region,
                    "source": m.source,
                    "destinations": m.destinations,
                    "seq": getattr(m, "tb_seq", -1),
                }
                if isinstance(m, RawMessage):
                    item.update(type="raw", raw=m.raw_data, **raw_parts(m.raw_data))
                elif isinstance(m, Message):
                    text, html = getattr(m, "tb_parts", None) or (None, None)
                    if text is None and html is None:
                        text = m.body
                    item.update(type="email", subject=m.subject, text=text, html=html)
                else:  # templated
                    item.update(
                        type="templated", template=m.template, template_data=m.template_data
                    )
                if isinstance(item["destinations"], list):  # moto adds To: again for raw
                    item["destinations"] = list(dict.fromkeys(item["destinations"]))
                out.append(item)
    out.sort(key=lambda i: i["seq"])
    return out


# ---------------------------------------------------------------------- SSO admin


def patch_ssoadmin() -> None:
    """moto names permission sets `arn:aws:sso:::instance/ssoins-…/ps-…`; AWS names them
    `arn:aws:sso:::permissionSet/ssoins-…/ps-…`. Use the real shape (moto only ever
    compares whole ARNs or takes the part after the last '/')."""
    from moto.moto_api._internal import mock_random as random
    from moto.ssoadmin.models import PermissionSet

    def generate_id(instance_arn: str) -> str:
        ps_prefix = instance_arn.replace(":::instance/", ":::permissionSet/", 1)
        return f"{ps_prefix}/ps-{random.get_random_string(length=16).lower()}"

    PermissionSet.generate_id = staticmethod(generate_id)


# ----------------------------------------------------------------------- SFN aws-sdk


def patch_stepfunctions_sdk() -> None:
    """Map the SFN service name `ssoadmin` to boto3's `sso-admin` (and name its errors)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service,
        state_task_service_aws_sdk,
    )

    state_task_service.StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES["ssoadmin"] = (
        "sso-admin"
    )
    # Errors then read "SsoAdmin.ConflictException", as in AWS, not "ssoadmin.…".
    state_task_service_aws_sdk._SERVICE_ERROR_NAMES["ssoadmin"] = "SsoAdmin"


def patch_stepfunctions_output() -> None:
    """DescribeExecution json.dumps()es the output, which may hold datetimes (an aws-sdk
    task result such as ssoadmin's CreatedDate, or $$.Execution.StartTime): moto answers
    HTTP 500. Serialise them as ISO 8601 strings, as the parser's own encoder does."""
    import types

    from moto.stepfunctions import responses
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    responses.json = types.SimpleNamespace(dumps=lambda obj, **_: to_json_str(obj))


def patch_stepfunctions_stop() -> None:
    """StopExecution sets the program's state to stopped, but a task waiting on a callback
    token sits in ``CallbackEndpoint.wait`` until its timeout: the execution stays RUNNING
    (for up to a lease's length). Interrupt every callback wait of the stopped program, as
    AWS does: the execution is ABORTED at once. The interrupted wait then fails its task;
    that failure must not turn the stopped program into a failed one."""
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    original_stop = Environment.set_stop
    original_error = Environment.set_error
    original_timed_out = Environment.set_timed_out

    def set_stop(self, stop_date, cause, error):  # type: ignore[no-untyped-def]
        original_stop(self, stop_date=stop_date, cause=cause, error=error)
        pool = getattr(self.callback_pool_manager, "_pool", {})
        for endpoint in list(pool.values()):
            endpoint.interrupt_all()

    def set_error(self, error):  # type: ignore[no-untyped-def]
        if not isinstance(self._program_state, ProgramStopped):
            original_error(self, error)

    def set_timed_out(self):  # type: ignore[no-untyped-def]
        if not isinstance(self._program_state, ProgramStopped):
            original_timed_out(self)

    Environment.set_stop = set_stop
    Environment.set_error = set_error
    Environment.set_timed_out = set_timed_out


# --------------------------------------------------------------------------- calls


class Calls:
    """When each operation reached the server (bounded)."""

    def __init__(self, keep: int = 10_000) -> None:
        import collections

        self.lock = threading.Lock()
        self.seen: "collections.deque[dict[str, Any]]" = collections.deque(maxlen=keep)

    def add(self, operation: str) -> None:
        with self.lock:
            self.seen.append({"operation": operation, "at": time.time()})

    def of(self, operation: str | None) -> list[dict[str, Any]]:
        with self.lock:
            return [c for c in self.seen if operation in (None, c["operation"])]

    def clear(self) -> None:
        with self.lock:
            self.seen.clear()


CALLS = Calls()


# ------------------------------------------------------------------- DynamoDB reads

DYNAMODB_TARGET = "DynamoDB_20120810."
DYNAMODB_READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}


def items_returned(operation: str, response: dict[str, Any]) -> int:
    """How many items a DynamoDB read answered with (its response body, parsed)."""
    if operation == "GetItem":
        return 1 if response.get("Item") else 0
    if operation in ("Query", "Scan"):
        items = response.get("Items")
        return len(items) if isinstance(items, list) else int(response.get("Count") or 0)
    if operation == "BatchGetItem":
        return sum(len(items) for items in (response.get("Responses") or {}).values())
    if operation == "TransactGetItems":
        return sum(1 for r in response.get("Responses") or [] if r.get("Item"))
    return 0


class Reads:
    """The DynamoDB reads the server answered: calls and items by operation (and by index)."""

    def __init__(self) -> None:
        import collections

        self.lock = threading.Lock()
        self.calls: "collections.Counter[str]" = collections.Counter()
        self.items: "collections.Counter[str]" = collections.Counter()
        self.items_by_index: "collections.Counter[str]" = collections.Counter()
        self.scanned: "collections.Counter[str]" = collections.Counter()
        self.by_operation_index: dict[str, "collections.Counter[str]"] = {}

    def add(self, operation: str, request: bytes, status: int, response: bytes) -> None:
        """One answered read (`status` 200); errors are not reads."""
        if status != 200:
            return
        try:
            answer = json.loads(response or b"{}")
            asked = json.loads(request or b"{}")
        except ValueError:
            return
        items = items_returned(operation, answer)
        with self.lock:
            self.calls[operation] += 1
            self.items[operation] += items
            if operation not in ("Query", "Scan"):
                self.scanned[operation] += items
                return
            index = asked.get("IndexName") or "table"
            scanned = int(answer.get("ScannedCount", items))
            self.items_by_index[index] += items
            self.scanned[operation] += scanned
            import collections

            entry = self.by_operation_index.setdefault(f"{operation} {index}", collections.Counter())
            entry.update(calls=1, items=items, scanned=scanned)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "calls": dict(self.calls),
                "items": dict(self.items),
                "items_by_index": dict(self.items_by_index),
                "scanned": dict(self.scanned),
                "by_operation_index": {k: dict(v) for k, v in self.by_operation_index.items()},
            }

    def clear(self) -> None:
        with self.lock:
            for counter in (self.calls, self.items, self.items_by_index, self.scanned):
                counter.clear()
            self.by_operation_index.clear()


READS = Reads()


def counting_reads(app: Any, environ: dict[str, Any], start_response: Any, operation: str, body: bytes) -> Any:
    """Calls moto, counting the answer if it is a DynamoDB read."""
    if operation not in DYNAMODB_READS or not environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGET):
        return app(environ, start_response)
    seen: dict[str, Any] = {}

    def capture(status: str, headers: Any, exc_info: Any = None) -> Any:
        seen["status"] = int(status.split(" ", 1)[0])
        return start_response(status, headers, exc_info)

    result = app(environ, capture)
    try:
        payload = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    READS.add(operation, body, seen.get("status", 0), payload)
    return [payload]


# ---------------------------------------------------------------- DynamoDB at scale

_scale = threading.local()  # per request: a Query's partition, a Scan's start, a transaction


class _SortedItems:
    """A table's items in moto's order (hash key, then range key), with their sort keys."""

    def __init__(self, keys: list[Any], items: list[Any]) -> None:
        self.keys = keys
        self.items = items
        self.changes = 0  # items inserted or removed since it was built


def _sort_key(table: Any, item: Any) -> Any:
    """The key moto sorts a table's items by, as plain values: DynamoType compares
    `cast_value`, so the order is the same, without a method call per comparison."""
    if table.range_key_attr is not None and item.range_key is not None:
        return (item.hash_key.cast_value, item.range_key.cast_value)
    return item.hash_key.cast_value


def _key_of(table: Any, key: dict[str, Any]) -> Any:
    """The sort key of an item key in DynamoDB JSON (an ExclusiveStartKey, a request's Key)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    hash_value = DynamoType(key[table.hash_key_attr]).cast_value
    if table.range_key_attr is not None and table.range_key_attr in key:
        return (hash_value, DynamoType(key[table.range_key_attr]).cast_value)
    return hash_value


def _item_count(table: Any) -> int:
    if table.range_key_attr is not None:
        return sum(len(part) for part in table.items.values())
    return len(table.items)


def _sorted(table: Any) -> _SortedItems:
    """The table's sorted items, kept between calls; rebuilt when its item count says it
    changed behind our back."""
    cache = getattr(table, "_tb_sorted", None)
    if cache is None or len(cache.items) != _item_count(table):
        if table.range_key_attr is not None:
            items = [item for part in table.items.values() for item in part.values()]
        else:
            items = list(table.items.values())
        pairs = sorted(((_sort_key(table, i), i) for i in items), key=lambda p: p[0])
        cache = _SortedItems([k for k, _ in pairs], [i for _, i in pairs])
        table._tb_sorted = cache
    return cache


# Past this many single inserts or removals, rebuilding (one sort) is cheaper than
# moving a million pointers each time.
_MAX_CHANGES = 200


def _noted_put(table: Any, item: Any) -> None:
    """An item was put: it takes its predecessor's place, or is inserted in order."""
    import bisect

    cache = getattr(table, "_tb_sorted", None)
    if cache is None:
        return
    key = _sort_key(table, item)
    i = bisect.bisect_left(cache.keys, key)
    if i < len(cache.keys) and cache.keys[i] == key:
        cache.items[i] = item
    elif cache.changes < _MAX_CHANGES:
        cache.keys.insert(i, key)
        cache.items.insert(i, item)
        cache.changes += 1
    else:
        table._tb_sorted = None


def _noted_delete(table: Any, item: Any) -> None:
    import bisect

    cache = getattr(table, "_tb_sorted", None)
    if cache is None or item is None:
        return
    key = _sort_key(table, item)
    i = bisect.bisect_left(cache.keys, key)
    if i < len(cache.keys) and cache.keys[i] == key and cache.changes < _MAX_CHANGES:
        del cache.keys[i]
        del cache.items[i]
        cache.changes += 1
    else:
        table._tb_sorted = None


def patch_dynamodb_scale() -> None:
    """moto 5.2.5 is made for small tables. Each Query and each Scan page sorts the whole
    table comparing DynamoTypes (a minute at a million items), a Scan page walks from the
    table's start to its ExclusiveStartKey, and a TransactWriteItems deep-copies every table
    it touches for its rollback. Same answers, at a cost that does not grow with the table
    for everything but the walk a Query of an index still does:

    - the sorted item list is kept per table: a put replaces or inserts one entry, a delete
      removes one; after many changes (or when the item count disagrees) it is sorted again,
      by plain key values;
    - a Query of the table (no index) sorts only its partition;
    - a Scan page of the table (no index, no segments) starts at its ExclusiveStartKey by
      bisection;
    - a transaction backs up the items it names and puts them back if it fails, instead of
      copying whole tables."""
    import bisect
    import copy
    import inspect

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original_put = Table.put_item
    original_delete = Table.delete_item
    original_query = Table.query
    original_scan = Table.scan
    original_transact = DynamoDBBackend.transact_write_items
    query_signature = inspect.signature(original_query)
    scan_signature = inspect.signature(original_scan)

    def put_item(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        item = original_put(self, *args, **kwargs)
        _noted_put(self, item)
        return item

    def delete_item(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        item = original_delete(self, *args, **kwargs)
        _noted_delete(self, item)
        return item

    def all_items(self):  # type: ignore[no-untyped-def]
        partition = getattr(_scale, "partition", None)
        if partition is not None and partition[0] is self:
            # A Query of the table: moto keeps only this partition's items (and sorts them).
            _scale.partition = None
            part = self.items.get(partition[1])
            if part is None:
                return []
            return list(part.values()) if self.range_key_attr is not None else [part]
        cache = _sorted(self)
        start = getattr(_scale, "scan_after", None)
        if start is not None and start[0] is self:
            _scale.scan_after = None
            return cache.items[bisect.bisect_right(cache.keys, start[1]):]
        return list(cache.items)

    def query(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        bound = query_signature.bind(self, *args, **kwargs)
        hash_key = bound.arguments.get("hash_key")
        if bound.arguments.get("index_name") or not isinstance(hash_key, DynamoType):
            return original_query(self, *args, **kwargs)
        _scale.partition = (self, hash_key)
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _scale.partition = None

    def scan(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        bound = scan_signature.bind(self, *args, **kwargs)
        start = bound.arguments.get("exclusive_start_key")
        segments = bound.arguments.get("segments", (None, None))
        if (
            not start
            or bound.arguments.get("index_name")
            or tuple(segments or (None, None)) != (None, None)
            or self.hash_key_attr not in start
            or (self.range_key_attr is not None and self.range_key_attr not in start)
        ):
            return original_scan(self, *args, **kwargs)
        # Start after the key instead of walking to it: moto then sees a first page.
        bound.arguments["exclusive_start_key"] = None
        _scale.scan_after = (self, _key_of(self, start))
        try:
            return original_scan(*bound.args, **bound.kwargs)
        finally:
            _scale.scan_after = None

    def table_deepcopy(self, memo):  # type: ignore[no-untyped-def]
        if getattr(_scale, "in_transaction", False):
            return self  # the transaction backs up its own items (below)
        result = self.__class__.__new__(self.__class__)
        memo[id(self)] = result
        result.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return result

    def transact_write_items(self, transact_items):  # type: ignore[no-untyped-def]
        backups = []  # (table, hash, range, the item before or None)
        try:
            for entry in transact_items:
                _, op = next(iter(entry.items()))
                table = self.tables.get(op.get("TableName"))
                if table is None:
                    continue
                key = op["Item"] if "Item" in op else op["Key"]
                hash_value = DynamoType(key[table.hash_key_attr])
                range_value = (
                    DynamoType(key[table.range_key_attr]) if table.range_key_attr is not None else None
                )
                before = table.get_item(hash_value, range_value)
                backups.append((table, hash_value, range_value, copy.deepcopy(before)))
        except (KeyError, TypeError, StopIteration, AttributeError):
            return original_transact(self, transact_items)  # malformed: moto's own way
        _scale.in_transaction = True
        try:
            return original_transact(self, transact_items)
        except BaseException:
            for table, hash_value, range_value, before in reversed(backups):
                current = table.get_item(hash_value, range_value)
                if before is None:
                    if current is not None:
                        Table.delete_item(table, hash_value, range_value)
                elif range_value is not None:
                    table.items[hash_value][range_value] = before
                    _noted_put(table, before)
                else:
                    table.items[hash_value] = before
                    _noted_put(table, before)
            raise
        finally:
            _scale.in_transaction = False

    Table.put_item = put_item
    Table.delete_item = delete_item
    Table.all_items = all_items
    Table.query = query
    Table.scan = scan
    Table.__deepcopy__ = table_deepcopy
    DynamoDBBackend.transact_write_items = transact_write_items


# --------------------------------------------------------------------- bulk seeding


ITEM_SIZE_LIMIT = 400_000


def put_items(table_name: str, items: list[dict[str, Any]]) -> int:
    """Puts each item (a PutItem with no condition: replaced if its key exists) through moto's
    backend: what BatchWriteItem does, without an HTTP request per 25 items, and without
    moto's per-attribute size check that makes building an item quadratic in its attributes
    (the whole item's size is checked once instead). Validated as moto validates a put."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    table = dynamodb_backends[DEFAULT_ACCOUNT][DEFAULT_REGION].get_table(table_name)
    for attrs in items:
        keys = ((table.hash_key_attr, table.hash_key_type), (table.range_key_attr, table.range_key_type))
        for key_attr, key_type in keys:
            if key_attr is not None and key_type not in (attrs.get(key_attr) or {}):
                raise ValueError(f"an item lacks its key {key_attr} ({key_type}): {str(attrs)[:200]}")
        table._validate_item_types(attrs)
        table._validate_key_sizes(attrs)
        item = Item.__new__(Item)
        item.hash_key = DynamoType(attrs[table.hash_key_attr])
        item.range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr is not None else None
        item.attrs = LimitedSizeDict.__new__(LimitedSizeDict)
        dict.__init__(item.attrs, ((k, DynamoType(v)) for k, v in attrs.items()))
        # The JSON text is never shorter than the item's DynamoDB size: measure only when close.
        if len(json.dumps(attrs)) > ITEM_SIZE_LIMIT and (
            sum(bytesize(k) + v.size() for k, v in item.attrs.items()) > ITEM_SIZE_LIMIT
        ):
            raise ValueError(f"an item is larger than 400 KB: {str(attrs)[:200]}")
        if item.range_key is not None:
            table.items[item.hash_key][item.range_key] = item
        else:
            table.items[item.hash_key] = item
        _noted_put(table, item)
    return len(items)


_org_lock = threading.Lock()


def create_accounts(accounts: list[dict[str, Any]]) -> int:
    """Creates accounts in the organization through moto's own CreateAccount, with the ids
    asked for (moto draws random ones)."""
    from moto.organizations import utils as org_utils
    from moto.organizations.models import organizations_backends

    backend = organizations_backends[DEFAULT_ACCOUNT]["aws"]
    known = {a.id for a in backend.accounts}
    with _org_lock:
        original = org_utils.make_random_account_id
        try:
            for a in accounts:
                account_id = str(a["id"])
                if len(account_id) != 12 or not account_id.isdigit() or account_id in known:
                    raise ValueError(f"account id {account_id!r} is not 12 digits or exists already")
                org_utils.make_random_account_id = lambda _id=account_id: _id
                backend.create_account(AccountName=str(a["name"]), Email=str(a["email"]))
                known.add(account_id)
        finally:
            org_utils.make_random_account_id = original
    return len(accounts)


# --------------------------------------------------------------------------- server


def apply_config() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.set_config(MOTO_CONFIG)


def install() -> None:
    patch_lambda()
    patch_cloudtrail()
    patch_ses()
    patch_ssoadmin()
    patch_stepfunctions_sdk()
    patch_stepfunctions_output()
    patch_stepfunctions_stop()
    patch_dynamodb_scale()
    apply_config()


def reset_all() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()
    STORE.reset()
    with FAULTS.lock:
        FAULTS.rules.clear()
        FAULTS.hits.clear()
    CALLS.clear()
    READS.clear()
    apply_config()


def testbed_app(request) -> tuple[int, Any]:  # type: ignore[no-untyped-def]
    """The /_testbed/ fixture endpoints. Returns (status, JSON-able body)."""
    path, method = request.path, request.method
    if path == "/_testbed/health":
        return 200, {"ok": True}
    if path == "/_testbed/reset" and method == "POST":
        reset_all()
        return 200, {"ok": True}
    if path == "/_testbed/cloudtrail/events":
        if method == "POST":
            doc = request.get_json(force=True)
            records = doc.get("events", doc.get("Records"))
            if not isinstance(records, list) or not all(
                isinstance(r, dict) and "eventTime" in r for r in records
            ):
                return 400, {"error": "events must be a list of records with eventTime"}
            try:
                added = STORE.add(
                    str(doc.get("account_id", "123456789012")),
                    doc.get("region", "us-east-1"),
                    records,
                )
            except ValueError as e:
                return 400, {"error": f"bad record: {e}"}
            return 200, {"added": added}
        if method == "DELETE":
            STORE.clear()
            return 200, {"ok": True}
    if path == "/_testbed/cloudtrail/calls":
        if method == "GET":
            with STORE.lock:
                return 200, list(STORE.calls)
        if method == "DELETE":
            with STORE.lock:
                STORE.calls.clear()
            return 200, {"ok": True}
    if path == "/_testbed/cloudtrail/throttle" and method == "POST":
        with STORE.lock:
            STORE.throttle_every = int(request.get_json(force=True).get("every") or 0)
            STORE.call_count = 0
        return 200, {"ok": True}
    if path == "/_testbed/faults":
        if method == "POST":
            rule = request.get_json(force=True)
            if not isinstance(rule, dict) or not rule.get("operation") or int(rule.get("times", 1)) < 1:
                return 400, {"error": "a fault needs an operation and times >= 1"}
            rule["times"] = int(rule.get("times", 1))
            with FAULTS.lock:
                FAULTS.rules.append(rule)
            return 200, {"ok": True}
        if method == "GET":
            with FAULTS.lock:
                return 200, {"rules": FAULTS.rules, "hits": FAULTS.hits}
        if method == "DELETE":
            with FAULTS.lock:
                FAULTS.rules.clear()
                FAULTS.hits.clear()
            return 200, {"ok": True}
    if path == "/_testbed/ses/messages" and method == "GET":
        return 200, ses_messages()
    if path == "/_testbed/calls":
        if method == "GET":
            return 200, CALLS.of(request.args.get("operation"))
        if method == "DELETE":
            CALLS.clear()
            return 200, {"ok": True}
    if path == "/_testbed/dynamodb/reads":
        if method == "GET":
            return 200, READS.snapshot()
        if method == "DELETE":
            READS.clear()
            return 200, {"ok": True}
    if path == "/_testbed/dynamodb/items" and method == "POST":
        doc = request.get_json(force=True)
        items = doc.get("items") if isinstance(doc, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            return 400, {"error": "items must be a list of items (DynamoDB JSON)"}
        try:
            return 200, {"put": put_items(str(doc.get("table")), items)}
        except Exception as e:  # moto's validation errors, a missing table
            return 400, {"error": f"{type(e).__name__}: {e}"}
    if path == "/_testbed/organizations/accounts" and method == "POST":
        doc = request.get_json(force=True)
        accounts = doc.get("accounts") if isinstance(doc, dict) else None
        if not isinstance(accounts, list) or not all(
            isinstance(a, dict) and {"id", "name", "email"} <= a.keys() for a in accounts
        ):
            return 400, {"error": "accounts must be a list of {id, name, email}"}
        try:
            return 200, {"created": create_accounts(accounts)}
        except Exception as e:  # no organization, a taken id
            return 400, {"error": f"{type(e).__name__}: {e}"}
    return 404, {"error": f"no testbed route {method} {path}"}


class Faults:
    """Injected failures: the next `times` calls of an operation (optionally only those whose
    body contains `match`) get an error, a replacement 200 body, or a delay first.

    POST /_testbed/faults {"operation": "CreateAccountAssignment", "times": 4,
                           "status": 400, "code": "ThrottlingException",   # an error, or
                           "body": {...},                                   # a 200 body, or
                           "delay_seconds": 3,                              # a hung call, or
                           "slow_seconds": 2,                               # a slow success
                           "match": "<substring of the request body>"}
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rules: list[dict[str, Any]] = []
        self.hits: list[dict[str, Any]] = []

    def take(self, operation: str, body: bytes) -> dict[str, Any] | None:
        with self.lock:
            for rule in self.rules:
                if rule["operation"] != operation or rule["times"] <= 0:
                    continue
                if rule.get("match") and rule["match"].encode() not in body:
                    continue
                rule["times"] -= 1
                self.hits.append({"operation": operation, "at": time.time(), "code": rule.get("code")})
                return dict(rule)
        return None


FAULTS = Faults()


def operation_of(environ: dict[str, Any], body: bytes) -> str:
    """The API operation of a request: X-Amz-Target (JSON protocols) or Action (query)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rsplit(".", 1)[-1]
    from urllib.parse import parse_qs

    return (parse_qs(body.decode("utf-8", "replace")).get("Action") or [""])[0]


def fault_response(rule: dict[str, Any], query_protocol: bool) -> tuple[int, dict[str, str], bytes]:
    if "body" in rule:
        return 200, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(rule["body"]).encode()
    code = rule.get("code", "InternalServerException")
    message = rule.get("message", "injected by the test bed")
    status = int(rule.get("status", 500))
    if query_protocol:
        kind = "Sender" if status < 500 else "Receiver"
        xml = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message>"
            "</Error><RequestId>injected</RequestId></ErrorResponse>"
        )
        return status, {"Content-Type": "text/xml"}, xml.encode()
    headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code}
    return status, headers, json.dumps({"__type": code, "message": message}).encode()


class TestbedMiddleware:
    """Serves /_testbed/* itself, injects faults, passes everything else to moto."""

    def __init__(self, moto_app: Any):
        self.moto_app = moto_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not environ.get("PATH_INFO", "").startswith("/_testbed/"):
            import io

            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            operation = operation_of(environ, body)
            if operation:
                CALLS.add(operation)
            if FAULTS.rules:
                rule = FAULTS.take(operation, body)
                if rule:
                    log(f"fault injected: {rule}")
                    if rule.get("slow_seconds"):
                        # A slow success: the call reaches moto late (to open a race window).
                        time.sleep(float(rule["slow_seconds"]))
                        return counting_reads(self.moto_app, environ, start_response, operation, body)
                    if rule.get("delay_seconds"):
                        # A hung call: the client should give up first; the service never
                        # sees it (forwarding it late would act on it behind the client's back).
                        time.sleep(float(rule["delay_seconds"]))
                        rule.setdefault("status", 504)
                        rule.setdefault("code", "RequestTimeout")
                    if "code" in rule or "body" in rule or "status" in rule:
                        status, headers, payload = fault_response(rule, not environ.get("HTTP_X_AMZ_TARGET"))
                        from werkzeug.wrappers import Response

                        return Response(payload, status=status, headers=headers)(environ, start_response)
            return counting_reads(self.moto_app, environ, start_response, operation, body)
        from werkzeug.wrappers import Request, Response

        status, body = testbed_app(Request(environ))
        response = Response(json.dumps(body), status=status, mimetype="application/json")
        return response(environ, start_response)


def make_server(port: int):  # type: ignore[no-untyped-def]
    """A threaded werkzeug server for moto + extensions, bound but not yet serving."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server as werkzeug_make_server

    install()
    app = TestbedMiddleware(DomainDispatcherApplication(create_backend_app))
    server = werkzeug_make_server(
        HOST, port, app, threaded=True, request_handler=MotoRequestHandler
    )
    # moto's Step Functions interpreter calls Lambda, DynamoDB, … through boto3 pointed
    # at http://localhost:$MOTO_PORT (read per call): that must be us.
    os.environ["MOTO_PORT"] = str(server.server_port)
    return server


class MotoExtServer:
    """In-process server for tests: ``with MotoExtServer() as s: s.url``."""

    def __init__(self, port: int = 0):
        self.server = make_server(port)
        self.port = self.server.server_port
        self.url = f"http://{HOST}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "MotoExtServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def log(message: str) -> None:
    print(f"motoext: {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    args = parser.parse_args()
    server = make_server(args.port)
    print(f"READY port={server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
