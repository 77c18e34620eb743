//! Every use is reviewed, on the local stack: a cycle ends in a review message with both
//! buttons in the review channel; the requester (and anyone who is not a reviewer) is refused
//! and audited; a reviewer's review is recorded once and shown in place; a follow-up carries a
//! note; a pending review is reminded after the policy's `within` and escalated after twice
//! that (3 s here, set by the stack's input); `audit export` lists the cycle with its reviewer.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use serde_json::{Value, json};

fn s() -> &'static Stack {
    stack_reviewing("3s")
}

fn user(i: usize) -> (String, String) {
    s();
    spare_user(i)
}

/// Breaks glass as `user` (a 4 s lease, or ended early with End access now) and waits until
/// the review message is posted: the request id and the review message's body.
async fn reviewed_cycle(user: &str, tag: &str, end_early: bool) -> (String, Value) {
    let body = seed_click(user, tag, s().get("EXAMPLE_PERMISSION_SET_ARN"));
    let id = request_id_of(&body);
    let (status, reply) = post_signed(&body).await;
    assert_eq!(status, 200, "{reply}");
    if end_early {
        wait_granted(&id).await;
        let answer = press(user, "end_access", &id).await;
        assert!(answer.contains("being removed"), "{answer}");
    }
    // Access ends by itself after 4 s; from then the review message comes within a minute.
    eventually("access to end", 60, || async {
        let item = request_item(&id).await?;
        item.get("revoked_at").map(|_| ())
    })
    .await;
    let message = eventually("the review message", 60, || async {
        review_messages(&id).await.into_iter().next()
    })
    .await;
    // The worker records the message's ts right after Slack answers.
    eventually("the review message's ts recorded", 10, || async {
        attr(&request_item(&id).await?, "review_ts")
    })
    .await;
    (id, message)
}

/// The review requests posted for `id` (chat.postMessage to the review channel).
async fn review_messages(id: &str) -> Vec<Value> {
    slack_requests()
        .await
        .into_iter()
        .filter(|r| r["path"] == "/api/chat.postMessage")
        .map(|r| r["body"].clone())
        .filter(|b| {
            b["channel"] == s().get("REVIEW_CHANNEL") && buttons(b).iter().any(|(_, v)| v == id)
        })
        .collect()
}

fn text_of(message: &Value) -> String {
    message["blocks"].to_string()
}

/// The first `chat.update` of the message `ts`, waited for up to `secs`.
async fn updated(ts: &str, secs: u64) -> Value {
    eventually("the review message updated", secs, || async {
        slack_requests()
            .await
            .into_iter()
            .find(|r| r["path"] == "/api/chat.update" && r["body"]["ts"] == ts)
    })
    .await
}

async fn item(id: &str) -> HashMap<String, AttributeValue> {
    request_item(id).await.expect("the request is recorded")
}

fn attr(item: &HashMap<String, AttributeValue>, key: &str) -> Option<String> {
    item.get(key).and_then(|v| v.as_s().ok()).cloned()
}

/// A click on a review button: the reply's body (empty when a modal was opened instead).
async fn press_review(user: &str, action: &str, id: &str) -> String {
    let payload = json!({
        "type": "block_actions", "team": {"id": s().get("SLACK_TEAM_ID")}, "user": {"id": user},
        "api_app_id": s().get("SLACK_API_APP_ID"), "trigger_id": format!("trigger-{user}-{id}"),
        "response_url": format!("{}/response/review", s().get("SLACK_FAKE_URL")),
        "actions": [{"action_id": action, "block_id": "review", "value": id, "type": "button", "action_ts": "1.5"}]
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let (status, reply) = post_signed(body.as_bytes()).await;
    assert_eq!(status, 200, "{reply}");
    reply
}

fn said(reply: &str) -> String {
    serde_json::from_str::<Value>(reply).unwrap()["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The follow-up note's modal submitted by `user`.
async fn submit_note(user: &str, id: &str, note: &str) -> (u16, String) {
    let payload = json!({
        "type": "view_submission", "team": {"id": s().get("SLACK_TEAM_ID")}, "user": {"id": user},
        "api_app_id": s().get("SLACK_API_APP_ID"),
        "view": {"id": "V0NOTE", "callback_id": "review_note", "private_metadata": id,
                 "state": {"values": {"note": {"note": {"type": "plain_text_input", "value": note}}}}}
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    post_signed(body.as_bytes()).await
}

async fn reconcile() -> Value {
    let out = invoke_worker(json!({"type": "reconcile"})).await;
    assert!(out["reviews"].is_object(), "{out}");
    out["reviews"].clone()
}

fn listed(reviews: &Value, key: &str, id: &str) -> bool {
    reviews[key]
        .as_array()
        .is_some_and(|a| a.iter().any(|v| v == id))
}

#[tokio::test]
async fn only_a_second_person_reviews_and_only_once() {
    let (requester, _) = user(0);
    let (outsider, _) = user(1);
    let reviewer = s().get("EXAMPLE_REVIEWER_SLACK_USER_ID").to_owned();
    let second = s().get("RESPONDER_SLACK_USER_ID").to_owned();
    let (id, message) = reviewed_cycle(&requester, "1700000101.000100", false).await;

    // The review message: both buttons, who, where, how it ended, the flags, the report.
    assert_eq!(
        buttons(&message),
        [
            ("review_ok".to_owned(), id.clone()),
            ("review_follow_up".to_owned(), id.clone())
        ]
    );
    let text = text_of(&message);
    for want in [
        requester.as_str(),
        "production",
        "BreakGlassAdmin",
        "expired",
        "Flags:",
        "security@example.com",
    ] {
        assert!(text.contains(want), "{want} missing from {text}");
    }
    let it = item(&id).await;
    assert_eq!(attr(&it, "review_pending").as_deref(), Some("pending"));
    let ts = attr(&it, "review_ts").expect("the review message's ts is recorded");

    // The requester cannot review their own use; someone who is not a reviewer cannot either.
    let reply = said(&press_review(&requester, "review_ok", &id).await);
    assert!(reply.contains("cannot review your own use"), "{reply}");
    let reply = said(&press_review(&outsider, "review_ok", &id).await);
    assert!(reply.contains("Only the policy's reviewers"), "{reply}");
    let refusals: Vec<(String, String)> = audit_events(&id)
        .await
        .into_iter()
        .filter(|(event, _)| event == "denied")
        .collect();
    assert!(
        refusals.iter().any(|(_, actor)| actor == &requester),
        "the requester's refusal is audited: {refusals:?}"
    );
    assert!(
        refusals.iter().any(|(_, actor)| actor == &outsider),
        "the outsider's refusal is audited: {refusals:?}"
    );
    let it = item(&id).await;
    assert!(
        attr(&it, "reviewed_by").is_none(),
        "a refusal records nothing"
    );

    // A reviewer's review is recorded, the message updated in place without buttons.
    let reply = said(&press_review(&reviewer, "review_ok", &id).await);
    assert_eq!(reply, "Recorded: reviewed — fine.");
    let it = item(&id).await;
    assert_eq!(attr(&it, "reviewed_by").as_deref(), Some(reviewer.as_str()));
    assert_eq!(attr(&it, "review_outcome").as_deref(), Some("fine"));
    assert!(
        !it.contains_key("review_pending"),
        "out of the pending index"
    );
    let updates: Vec<Value> = slack_requests()
        .await
        .into_iter()
        .filter(|r| r["path"] == "/api/chat.update" && r["body"]["ts"] == ts.as_str())
        .map(|r| r["body"].clone())
        .collect();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0]["channel"], s().get("REVIEW_CHANNEL"));
    assert!(buttons(&updates[0]).is_empty(), "no buttons once reviewed");
    assert!(text_of(&updates[0]).contains("Reviewed — fine"));
    // The request's thread hears it.
    let thread = eventually("the thread to hear the review", 10, || async {
        slack_requests().await.into_iter().find(|r| {
            r["path"] == "/api/chat.postMessage"
                && r["body"]["channel"] == s().get("NOTIFY_CHANNEL")
                && r["body"]["thread_ts"].is_string()
                && r["body"].to_string().contains("Reviewed — fine")
                && r["body"].to_string().contains(&reviewer)
        })
    })
    .await;
    assert!(thread["body"]["text"].as_str().unwrap().contains(&reviewer));

    // A second click, or a second reviewer, changes nothing.
    for (who, action) in [(&reviewer, "review_ok"), (&second, "review_follow_up")] {
        let reply = said(&press_review(who, action, &id).await);
        assert!(reply.contains("Already reviewed — fine"), "{reply}");
    }
    let it = item(&id).await;
    assert_eq!(attr(&it, "reviewed_by").as_deref(), Some(reviewer.as_str()));
    let reviews = audit_names(&id)
        .await
        .into_iter()
        .filter(|e| e == "reviewed")
        .count();
    assert_eq!(reviews, 1);

    // The audit export lists the cycle with its reviewer (JSON and CSV).
    let export = audit_export_today;
    let rows: Vec<Value> = serde_json::from_str(&export("json")).unwrap();
    let row = rows
        .iter()
        .find(|r| r["request_id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not in the export: {rows:?}"));
    assert_eq!(row["reviewer_slack_id"], reviewer.as_str());
    assert_eq!(row["review"], "fine");
    assert_eq!(row["requester_slack_id"], requester.as_str());
    assert!(
        row["seconds_to_review"].as_i64().is_some_and(|s| s >= 0),
        "{row}"
    );
    assert!(row["flags_high"].is_number(), "{row}");
    let csv = export("csv");
    assert!(csv.starts_with("request_id,"), "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.contains(&id) && l.contains(&reviewer)),
        "{csv}"
    );
}

#[tokio::test]
async fn a_follow_up_carries_a_note_from_a_reviewer_of_the_group() {
    let (requester, _) = user(2);
    // Dave reviews as a member of the policy's reviewer group, not by his Slack id.
    let dave = s().get("GROUP_SLACK_USER_ID").to_owned();
    let (id, message) = reviewed_cycle(&requester, "1700000102.000100", true).await;
    let text = text_of(&message);
    assert!(
        text.contains(&format!("ended early by <@{requester}>")),
        "{text}"
    );

    let reply = press_review(&dave, "review_follow_up", &id).await;
    assert!(reply.is_empty(), "the note's modal opens instead: {reply}");
    let opened = eventually("the note's modal", 10, || async {
        slack_requests().await.into_iter().find(|r| {
            r["path"] == "/api/views.open" && r["body"]["view"]["private_metadata"] == id.as_str()
        })
    })
    .await;
    assert_eq!(opened["body"]["view"]["callback_id"], "review_note");
    // The requester cannot even submit a note (a forged submission is refused on the field).
    let (status, reply) = submit_note(&requester, &id, "all fine, trust me").await;
    assert_eq!(status, 200);
    assert!(reply.contains("cannot review your own use"), "{reply}");
    // An empty note is refused on the field, and nothing is recorded.
    let (_, reply) = submit_note(&dave, &id, "   ").await;
    assert!(reply.contains("\"errors\""), "{reply}");
    assert!(attr(&item(&id).await, "reviewed_by").is_none());

    let (status, reply) = submit_note(&dave, &id, "Why was <b>the trail</b> touched?").await;
    assert_eq!(
        (status, reply.as_str()),
        (200, ""),
        "success closes the modal"
    );
    let it = item(&id).await;
    assert_eq!(attr(&it, "review_outcome").as_deref(), Some("follow_up"));
    assert_eq!(attr(&it, "reviewed_by").as_deref(), Some(dave.as_str()));
    assert_eq!(
        attr(&it, "review_note").as_deref(),
        Some("Why was <b>the trail</b> touched?")
    );
    let details = audit_details(&id).await;
    assert!(
        details
            .iter()
            .any(|(e, d)| e == "reviewed" && d.contains("needs follow-up: Why was")),
        "{details:?}"
    );
    // The updated message shows the note, escaped.
    let ts = attr(&it, "review_ts").unwrap();
    let update = updated(&ts, 10).await;
    let text = text_of(&update["body"]);
    assert!(text.contains("Needs follow-up"), "{text}");
    assert!(text.contains("&lt;b&gt;the trail&lt;/b&gt;"), "{text}");
}

#[tokio::test]
async fn a_pending_review_is_reminded_then_escalated_once_each() {
    let (requester, _) = user(3);
    let reviewer = s().get("EXAMPLE_REVIEWER_SLACK_USER_ID").to_owned();
    let (id, _) = reviewed_cycle(&requester, "1700000103.000100", false).await;
    let it = item(&id).await;
    let ts = attr(&it, "review_ts").unwrap();
    let reported = time::OffsetDateTime::parse(
        &attr(&it, "reported_at").unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let wait_until = |secs: i64| async move {
        let left = reported + time::Duration::seconds(secs) - time::OffsetDateTime::now_utc();
        if left.is_positive() {
            tokio::time::sleep(Duration::from_secs_f64(left.as_seconds_f64() + 0.5)).await;
        }
    };

    // After `within` (3 s): reminded, once, in the review message's thread.
    wait_until(3).await;
    let reviews = reconcile().await;
    assert!(listed(&reviews, "reminded", &id), "{reviews}");
    let reminder = slack_requests()
        .await
        .into_iter()
        .find(|r| {
            r["path"] == "/api/chat.postMessage"
                && r["body"]["channel"] == s().get("REVIEW_CHANNEL")
                && r["body"]["thread_ts"] == ts.as_str()
        })
        .expect("a reminder in the review message's thread");
    assert!(
        reminder["body"]["text"]
            .as_str()
            .unwrap()
            .contains(&format!("<@{reviewer}>"))
    );
    let again = reconcile().await;
    assert!(!listed(&again, "reminded", &id), "reminded once: {again}");

    // After twice `within`: escalated, once, to the escalation channel, with the alarm's line.
    wait_until(6).await;
    let reviews = reconcile().await;
    assert!(listed(&reviews, "escalated", &id), "{reviews}");
    let escalation = slack_requests()
        .await
        .into_iter()
        .find(|r| {
            r["path"] == "/api/chat.postMessage"
                && r["body"]["channel"] == s().get("ESCALATION_CHANNEL")
                && r["body"]["text"].as_str().is_some_and(|t| t.contains(&id))
        })
        .expect("an escalation in the escalation channel");
    assert!(
        escalation["body"]["text"]
            .as_str()
            .unwrap()
            .contains("waited for review")
    );
    let again = reconcile().await;
    assert!(!listed(&again, "escalated", &id), "escalated once: {again}");
    let names = audit_names(&id).await;
    assert_eq!(
        names.iter().filter(|e| *e == "review_reminded").count(),
        1,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|e| *e == "review_escalated").count(),
        1,
        "{names:?}"
    );
    let logs = binary_logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("review escalated") && l.contains(&id)),
        "the log line the alarm counts"
    );

    // Reviewed at last: out of the pending reviews for good.
    let reply = said(&press_review(&reviewer, "review_ok", &id).await);
    assert_eq!(reply, "Recorded: reviewed — fine.");
    let after = reconcile().await;
    for key in ["posted", "reminded", "escalated"] {
        assert!(!listed(&after, key, &id), "{after}");
    }
}

/// Use of the session found only by the look after the end (after the report): the pending
/// review's message is updated in place to say so, its buttons kept.
#[tokio::test]
async fn use_found_after_the_report_updates_the_review_message() {
    let (requester, sso_user) = user(4);
    let (id, _) = reviewed_cycle(&requester, "1700000104.000100", false).await;
    let it = item(&id).await;
    let ts = attr(&it, "review_ts").unwrap();
    let revoked = break_glass::time_util::from_rfc3339(&attr(&it, "revoked_at").unwrap()).unwrap();
    // A call with the session's credentials 2 s after the end (they last 5 s here), recorded
    // only now, after the report.
    let account = s().get("EXAMPLE_ACCOUNT_ID");
    let arn = format!(
        "arn:aws:sts::{account}:assumed-role/AWSReservedSSO_BreakGlassAdmin_0123456789abcdef/{sso_user}"
    );
    let record = json!({"eventID": format!("late-{id}"), "awsRegion": "us-east-1",
        "eventTime": break_glass::time_util::rfc3339(revoked + time::Duration::seconds(2)),
        "eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey", "readOnly": false,
        "recipientAccountId": account, "requestParameters": {"userName": "backdoor"},
        "userIdentity": {"type": "AssumedRole", "arn": arn, "accountId": account},
        "sourceIPAddress": "203.0.113.67", "userAgent": "aws-cli/2.15"});
    http_json(
        reqwest::Method::POST,
        &format!("{}/_testbed/cloudtrail/events", s().get("MOTO_URL")),
        Some(json!({"account_id": account, "region": "us-east-1", "events": [record]})),
    )
    .await;
    let update = updated(&ts, 60).await;
    let text = text_of(&update["body"]);
    assert!(text.contains("1 event(s) after the access ended"), "{text}");
    assert!(
        buttons(&update["body"])
            .iter()
            .any(|(a, v)| a == "review_ok" && v == &id),
        "still waiting for review: the buttons stay"
    );
}
