//! Integration tests against the local stack: the real binary under `cargo lambda watch`,
//! the real AWS SDK against moto, moto executing the real ASL, real Slack signatures.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn one_click_starts_one_execution_however_often_it_arrives() {
    let s = stack();
    let sfn = aws_sdk_sfn::Client::new(&sdk().await);
    let body = seed_click(
        s.get("EXAMPLE_SLACK_USER_ID"),
        "1700000001.000100",
        s.get("EXAMPLE_PERMISSION_SET_ARN"),
    );
    let id = request_id_of(&body);

    // Three deliveries one after another, then five at once.
    for _ in 0..3 {
        let (status, reply) = post_signed(&body).await;
        assert_eq!(status, 200, "{reply}");
        let reply: Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(reply["text"], "Glass broken - access incoming");
        assert_eq!(reply["response_type"], "ephemeral");
    }
    let burst = futures_util::future::join_all((0..5).map(|_| post_signed(&body))).await;
    for (status, reply) in burst {
        assert_eq!(status, 200, "{reply}");
        assert!(reply.contains("Glass broken - access incoming"), "{reply}");
    }

    let executions = executions_named(&sfn, &id).await;
    assert_eq!(executions.len(), 1, "one execution for one click");
    let described = sfn
        .describe_execution()
        .execution_arn(executions[0].execution_arn())
        .send()
        .await
        .unwrap();
    let input: Value = serde_json::from_str(described.input().unwrap()).unwrap();
    assert_eq!(
        input,
        json!({"request_id": id, "cloudtrail_delay_seconds": 1, "approval_timeout_seconds": 0}),
        "no approval asked: the state machine grants at once"
    );
}

#[tokio::test]
async fn a_denied_click_starts_nothing() {
    let s = stack();
    let sdk = sdk().await;
    let body = seed_click(
        "U0MALLORY01",
        "1700000002.000100",
        s.get("EXAMPLE_PERMISSION_SET_ARN"),
    );
    let id = request_id_of(&body);
    let (status, reply) = post_signed(&body).await;
    assert_eq!(status, 200);
    assert!(reply.contains("Break glass refused"), "{reply}");
    // Allowed user, but a permission set the policy does not list.
    let other = seed_click(
        s.get("EXAMPLE_SLACK_USER_ID"),
        "1700000002.000200",
        s.get("READONLY_PERMISSION_SET_ARN"),
    );
    let (status, reply) = post_signed(&other).await;
    assert_eq!(status, 200);
    assert!(reply.contains("Break glass refused"), "{reply}");

    let sfn = aws_sdk_sfn::Client::new(&sdk);
    assert!(executions_named(&sfn, &id).await.is_empty());
    assert!(
        executions_named(&sfn, &request_id_of(&other))
            .await
            .is_empty()
    );
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let item = ddb
        .get_item()
        .table_name(s.get("TABLE_NAME"))
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(id))
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("request".into()),
        )
        .send()
        .await
        .unwrap();
    assert!(item.item.is_none(), "a denied click records no request");
}

#[tokio::test]
async fn forged_stale_future_tampered_and_unsigned_requests_get_401() {
    let s = stack();
    let secret = s.get("SLACK_SIGNING_SECRET");
    let body = seed_click(
        s.get("EXAMPLE_SLACK_USER_ID"),
        "1700000003.000100",
        s.get("EXAMPLE_PERMISSION_SET_ARN"),
    );
    let id = request_id_of(&body);
    let cases: Vec<(&str, u16, String)> = vec![
        (
            "forged",
            post(&body, Some("not-the-signing-secret-at-all"), 0)
                .await
                .0,
            String::new(),
        ),
        // Well past the 300 s window: a loaded machine may take a second or two to deliver
        // (the exact boundary is unit-tested against a fixed clock).
        (
            "stale",
            post(&body, Some(secret), -400).await.0,
            String::new(),
        ),
        (
            "future",
            post(&body, Some(secret), 400).await.0,
            String::new(),
        ),
        ("unsigned", post(&body, None, 0).await.0, String::new()),
    ];
    for (what, status, _) in &cases {
        assert_eq!(*status, 401, "{what}");
    }
    // Tampered: signed, then one byte of the body changed.
    let ts = now().to_string();
    let mut tampered = body.clone();
    let sig = break_glass::slack::signature::sign(secret.as_bytes(), &ts, &body);
    let pos = tampered.len() / 2;
    tampered[pos] ^= 1;
    let resp = reqwest::Client::new()
        .post(s.get("WEBHOOK_URL"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", sig)
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401, "tampered");
    assert_eq!(
        resp.text().await.unwrap(),
        "",
        "a refusal has an empty body"
    );

    let sfn = aws_sdk_sfn::Client::new(&sdk().await);
    assert!(
        executions_named(&sfn, &id).await.is_empty(),
        "nothing started"
    );
}

#[tokio::test]
async fn bad_bodies_get_a_clear_4xx() {
    let secret = stack().get("SLACK_SIGNING_SECRET");
    let big = vec![b'a'; 256 * 1024 + 1];
    assert_eq!(post(&big, Some(secret), 0).await.0, 413);
    let unknown =
        serde_urlencoded::to_string([("payload", r#"{"type":"dialog_submission"}"#)]).unwrap();
    let (status, reply) = post(unknown.as_bytes(), Some(secret), 0).await;
    assert_eq!(status, 400);
    assert!(reply.contains("unsupported payload type"), "{reply}");
    let (status, _) = post(b"payload=%7Bbroken", Some(secret), 0).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_worker_names_unknown_tasks() {
    let s = stack();
    let url = format!(
        "{}/2015-03-31/functions/{}/invocations",
        s.get("LAMBDA_ENDPOINT_URL"),
        s.get("WORKER_FUNCTION")
    );
    let resp = reqwest::Client::new()
        .post(&url)
        .json(&json!({"type": "self_destruct", "request_id": "bg-000000000000000000000000"}))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errorType"], "InvalidInput", "{body}");
}

/// Slack click → grant → hold → revoke → CloudTrail → report by e-mail, on the real ASL.
#[tokio::test]
async fn the_whole_cycle() {
    let s = stack();
    let user = s.get("SECOND_SSO_USER_NAME");
    let ps = s.get("EXAMPLE_PERMISSION_SET_ARN");
    let account = s.get("EXAMPLE_ACCOUNT_ID");
    let principal = principal(user).await;
    let assigned = || async { assignment_count(&principal, ps).await > 0 };
    assert!(!assigned().await, "no access before the click");

    let body = seed_click(s.get("SECOND_SLACK_USER_ID"), "1700000004.000100", ps);
    let id = request_id_of(&body);
    let (status, reply) = post_signed(&body).await;
    assert_eq!(status, 200, "{reply}");

    eventually("the grant", 60, || async { assigned().await.then_some(()) }).await;

    // What the user did while holding access, as CloudTrail would record it; plus one event of
    // a look-alike session that must not be reported.
    let arn = |session: &str| {
        format!(
            "arn:aws:sts::{account}:assumed-role/AWSReservedSSO_BreakGlassAdmin_0123456789abcdef/{session}"
        )
    };
    let now = break_glass::time_util::rfc3339(time::OffsetDateTime::now_utc());
    let record = |name: &str, source: &str, ro: bool, session: &str| {
        json!({"eventVersion": "1.09", "eventID": format!("{name}-{session}"), "eventTime": now, "awsRegion": "us-east-1",
               "eventSource": source, "eventName": name, "readOnly": ro, "recipientAccountId": account,
               "userIdentity": {"type": "AssumedRole", "arn": arn(session), "accountId": account},
               "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15"})
    };
    let events = vec![
        record("ListBuckets", "s3.amazonaws.com", true, user),
        record("CreateAccessKey", "iam.amazonaws.com", false, user),
        record(
            "DeleteTrail",
            "cloudtrail.amazonaws.com",
            false,
            &format!("{user}.evil"),
        ),
    ];
    http_json(
        Method::POST,
        &format!("{}/_testbed/cloudtrail/events", s.get("MOTO_URL")),
        Some(json!({"account_id": account, "region": "us-east-1", "events": events})),
    )
    .await;

    let status = finished(&id, 90).await.0;
    assert_eq!(status, aws_sdk_sfn::types::ExecutionStatus::Succeeded);
    assert!(!assigned().await, "access revoked");

    let messages = http_json(
        Method::GET,
        &format!("{}/_testbed/ses/messages", s.get("MOTO_URL")),
        None,
    )
    .await;
    let mails: Vec<&Value> = messages
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m.to_string().contains(&id))
        .collect();
    let mail = mails
        .first()
        .unwrap_or_else(|| panic!("no report mail for {id} in {messages}"));
    let html = mail["body"]["html"]
        .as_str()
        .or(mail["html"].as_str())
        .unwrap_or_default()
        .to_owned();
    let text = mail.to_string();
    assert!(html.contains(account), "the report names the account");
    assert!(
        html.contains("CreateAccessKey") && html.contains("ListBuckets"),
        "the session's events are in it"
    );
    assert!(
        !text.contains("DeleteTrail"),
        "a look-alike session's events are not"
    );
    assert!(
        text.contains("security@example.com"),
        "sent to the configured recipients"
    );
    let to: Vec<&Value> = mails.iter().map(|m| &m["destinations"]).collect();
    assert_eq!(
        to,
        [&json!(["security@example.com"]), &json!([user])],
        "the security team's copy on its own, then the requester's"
    );
    // The JSON twin rides along: the machine-readable report of the same session.
    let twin = mail["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["filename"] == format!("break-glass-{id}.json"))
        .unwrap_or_else(|| panic!("no JSON twin attached: {mail}"));
    assert_eq!(twin["content_type"], "application/json");
    let twin: Value = serde_json::from_str(twin["content"].as_str().unwrap()).unwrap();
    assert_eq!(twin["events"], 2, "{twin}");
    let key = &twin["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["action"] == "CreateAccessKey")
        .unwrap_or_else(|| panic!("CreateAccessKey is not flagged: {twin}"));
    assert_eq!(
        (&key["service"], &key["severity"], &key["technique"]),
        (&json!("iam"), &json!("high"), &json!("T1098.001"))
    );

    let trail = audit_names(&id).await;
    assert_eq!(trail, WHOLE_CYCLE);
}

/// Credentials issued before the end stay valid: a call made with the session after revoke
/// is reported as critical, in the request's thread and as a mailed addendum.
#[tokio::test]
async fn use_after_the_end_is_reported_in_the_thread_and_mailed() {
    let s = stack();
    let (slack_user, user) = spare_user(0);
    let ps = s.get("EXAMPLE_PERMISSION_SET_ARN");
    let account = s.get("EXAMPLE_ACCOUNT_ID");
    let principal = principal(&user).await;
    let body = seed_click(&slack_user, "1700000009.000100", ps);
    let id = request_id_of(&body);
    assert_eq!(post_signed(&body).await.0, 200);
    let revoked = eventually("the revoke", 60, || async {
        request_item(&id)
            .await
            .and_then(|i| i.get("revoked_at").and_then(|v| v.as_s().ok()).cloned())
    })
    .await;
    assert_eq!(assignment_count(&principal, ps).await, 0);
    let revoked = break_glass::time_util::from_rfc3339(&revoked).unwrap();
    let after = break_glass::time_util::rfc3339(revoked + time::Duration::seconds(2));
    let arn = format!(
        "arn:aws:sts::{account}:assumed-role/AWSReservedSSO_BreakGlassAdmin_0123456789abcdef/{user}"
    );
    let record = json!({"eventID": "after-end-1", "eventTime": after, "awsRegion": "us-east-1",
        "eventSource": "iam.amazonaws.com", "eventName": "CreateUser", "readOnly": false,
        "recipientAccountId": account, "requestParameters": {"userName": "backdoor"},
        "userIdentity": {"type": "AssumedRole", "arn": arn, "accountId": account},
        "sourceIPAddress": "203.0.113.66", "userAgent": "aws-cli/2.15"});
    http_json(
        Method::POST,
        &format!("{}/_testbed/cloudtrail/events", s.get("MOTO_URL")),
        Some(json!({"account_id": account, "region": "us-east-1", "events": [record]})),
    )
    .await;
    let status = finished(&id, 90).await.0;
    assert_eq!(status, aws_sdk_sfn::types::ExecutionStatus::Succeeded);
    assert_eq!(
        audit_names(&id).await.last().map(String::as_str),
        Some("used_after_end")
    );
    // A retried Report (its first answer lost) still says when to look after the end.
    let again = invoke_worker(json!({"type": "report", "request_id": id})).await;
    assert_eq!(again["already_reported"], true, "{again}");
    let due = again["after_end_check_at"]
        .as_str()
        .and_then(break_glass::time_util::from_rfc3339)
        .unwrap_or_else(|| panic!("no after_end_check_at: {again}"));
    assert!(due > revoked, "{again}");

    let thread: Vec<String> = slack_requests()
        .await
        .iter()
        .filter_map(|r| r["body"]["text"].as_str().map(str::to_owned))
        .filter(|t| t.contains("after the access ended") && t.contains(&user))
        .collect();
    // The report (after the CloudTrail wait) already saw it; the look once every credential
    // has expired tells the thread which calls were made.
    assert!(
        thread
            .iter()
            .any(|t| t.starts_with(":page_facing_up: Report on") && t.contains("Critical")),
        "{thread:?}"
    );
    let critical = thread
        .iter()
        .find(|t| t.starts_with(&format!(":rotating_light: *Critical: {user} used")))
        .unwrap_or_else(|| panic!("the thread was not told: {thread:?}"));
    assert!(
        critical.contains("iam:CreateUser user backdoor from 203.0.113.66"),
        "{critical}"
    );

    let messages = http_json(
        Method::GET,
        &format!("{}/_testbed/ses/messages", s.get("MOTO_URL")),
        None,
    )
    .await;
    let addendum = messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["subject"]
                .as_str()
                .is_some_and(|s| s.starts_with("Break-glass addendum") && s.contains(&user))
        })
        .unwrap_or_else(|| panic!("no addendum mailed: {messages}"));
    let html = addendum["html"].as_str().unwrap();
    assert!(html.contains("Used after access ended"), "{html}");
    assert!(html.contains("backdoor"), "the resource is named");
}

/// A session longer than the mail's timeline cap: the mail says how many events are left
/// out, and the full timeline goes as a CSV attachment (a raw e-mail).
#[tokio::test]
async fn a_long_session_is_capped_with_the_full_timeline_attached() {
    let s = stack();
    let account = s.get("EXAMPLE_ACCOUNT_ID");
    let user = s.get("EMAIL_SSO_USER_NAME");
    let body = seed_click(
        s.get("EMAIL_SLACK_USER_ID"),
        "1700000007.000100",
        s.get("EXAMPLE_PERMISSION_SET_ARN"),
    );
    let id = request_id_of(&body);
    assert_eq!(post_signed(&body).await.0, 200);
    let now = break_glass::time_util::rfc3339(time::OffsetDateTime::now_utc());
    let arn = format!(
        "arn:aws:sts::{account}:assumed-role/AWSReservedSSO_BreakGlassAdmin_0123456789abcdef/{user}"
    );
    let mut events: Vec<Value> = (0..12)
        .map(|i| {
            json!({"eventID": format!("long-{i}"), "eventTime": now, "awsRegion": "us-east-1",
                   "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances", "readOnly": true,
                   "recipientAccountId": account, "userIdentity": {"type": "AssumedRole", "arn": arn, "accountId": account},
                   "sourceIPAddress": "198.51.100.7", "userAgent": "=cmd|' /C calc'!A0"})
        })
        .collect();
    // Carol's portal sign-in, in the Identity Center account (the same account here).
    events.push(json!({"eventID": "portal-1", "eventTime": now, "awsRegion": "us-east-1",
        "eventSource": "sso.amazonaws.com", "eventName": "Authenticate", "readOnly": false,
        "recipientAccountId": account, "userIdentity": {"type": "Unknown", "userName": user, "accountId": account},
        "sourceIPAddress": "198.51.100.7", "userAgent": "Mozilla/5.0"}));
    http_json(
        Method::POST,
        &format!("{}/_testbed/cloudtrail/events", s.get("MOTO_URL")),
        Some(json!({"account_id": account, "region": "us-east-1", "events": events})),
    )
    .await;
    let status = finished(&id, 90).await.0;
    assert_eq!(status, aws_sdk_sfn::types::ExecutionStatus::Succeeded);
    let messages = http_json(
        Method::GET,
        &format!("{}/_testbed/ses/messages", s.get("MOTO_URL")),
        None,
    )
    .await;
    let raw = messages
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["raw"].as_str())
        .find(|r| mime_parts(r).iter().any(|p| p.contains(&id)))
        .unwrap_or_else(|| panic!("no raw report mail for {id}"))
        .to_owned();
    assert!(
        raw.contains(&format!("filename=\"break-glass-{id}.csv\"")),
        "the CSV is attached"
    );
    let parts = mime_parts(&raw);
    let html = parts
        .iter()
        .find(|p| p.contains("<html"))
        .expect("an HTML part");
    assert!(
        html.contains("7 more events are not shown here"),
        "the cap is stated"
    );
    assert!(
        html.contains("Identity Center portal sign-ins (1)"),
        "the portal sign-in is reported"
    );
    let csv = parts
        .iter()
        .find(|p| p.starts_with("time,region,service"))
        .expect("a CSV part");
    assert_eq!(
        csv.lines().count(),
        1 + 12,
        "every event of the session in the CSV"
    );
    assert!(csv.contains("\"'=cmd|"), "formula cells are defused");
}

/// Reading another account's CloudTrail goes through the report role assumed there (STS on
/// moto), and the session's events are found with those credentials.
#[tokio::test]
async fn the_target_account_is_read_through_the_assumed_report_role() {
    let s = stack();
    let sdk = sdk().await;
    let account = s.get("EXAMPLE_ACCOUNT_ID");
    let now = time::OffsetDateTime::now_utc();
    let arn = format!(
        "arn:aws:sts::{account}:assumed-role/AWSReservedSSO_ReadOnly_0123456789abcdef/role-test@example.com"
    );
    let record = json!({"eventID": "assumed-1", "eventTime": break_glass::time_util::rfc3339(now), "awsRegion": "us-east-1",
        "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets", "readOnly": true, "recipientAccountId": account,
        "userIdentity": {"type": "AssumedRole", "arn": arn, "accountId": account}});
    http_json(
        Method::POST,
        &format!("{}/_testbed/cloudtrail/events", s.get("MOTO_URL")),
        Some(json!({"account_id": account, "region": "us-east-1", "events": [record]})),
    )
    .await;
    // We pretend to run in another account, so the target account needs the role.
    let collector = break_glass::aws::cloudtrail::Collector::new(
        &sdk,
        &["us-east-1".to_owned()],
        Some("999999999999".into()),
        Some("break-glass-report-reader".into()),
        "aws",
    );
    let sources = collector.sources(account, "bg-roletest").await;
    assert_eq!(
        sources.len(),
        2,
        "the target account and the Identity Center account"
    );
    let session = break_glass::report::Session {
        account_id: account.to_owned(),
        more_accounts: Vec::new(),
        permission_set_name: "ReadOnly".into(),
        user_name: "role-test@example.com".into(),
    };
    let found = break_glass::report::collect::collect(
        sources,
        &session,
        now - time::Duration::minutes(5),
        now + time::Duration::minutes(5),
    )
    .await;
    assert!(found.incomplete.is_empty(), "{:?}", found.incomplete);
    assert_eq!(
        found.events.len(),
        1,
        "found with the assumed role's credentials"
    );
    let calls = http_json(
        Method::GET,
        &format!("{}/_testbed/cloudtrail/calls", s.get("MOTO_URL")),
        None,
    )
    .await;
    assert!(
        calls
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["account_id"] == account)
    );
}
