//! Whoever is on call breaks glass at once; anyone else needs a second person's OK. On the
//! local stack, with the test bed's PagerDuty and Opsgenie fakes (who is on call is set with
//! `PUT /_testbed/oncall`, the cache is off): on call → granted without approval; not on call
//! → an approval request with both buttons, in the channel and sent directly to each approver
//! (by Slack id and through the approver group), that the requester cannot approve and the
//! approver can, every copy then showing the outcome; deny → nothing granted, the requester told; no decision within the rule's
//! `approval_timeout` (12 s here) → expired, nothing granted; the service down → the rule's
//! fallback, audited; a secondary passes only where its level is listed; a rule that needs an
//! incident checks it is open and links it in the review and on the incident.
//!
//! Tests that change who is on call take turns (one schedule, one list per level).

mod common;

use std::sync::Mutex;

use common::*;
use serde_json::{Value, json};

fn s() -> &'static Stack {
    start("4s", 3, &["--approval-timeout", "12s"])
}

/// Who is on call is shared by every test of this binary: one at a time.
static ONCALL: Mutex<()> = Mutex::new(());

fn take_turn() -> std::sync::MutexGuard<'static, ()> {
    ONCALL.lock().unwrap_or_else(|e| e.into_inner())
}

async fn set_on_call(service_url_key: &str, schedule: &str, level: u32, emails: &[&str]) {
    http_json(
        reqwest::Method::PUT,
        &format!("{}/_testbed/oncall", s().get(service_url_key)),
        Some(json!({"schedule_id": schedule, "emails": emails, "level": level})),
    )
    .await;
}

/// Clears levels 1 and 2 of both PagerDuty schedules and the Opsgenie schedule.
async fn nobody_on_call() {
    for schedule in ["EXAMPLE_ONCALL_SCHEDULE_ID", "SECONDARY_ONCALL_SCHEDULE_ID"] {
        for level in [1, 2] {
            set_on_call("PAGERDUTY_API_URL", s().get(schedule), level, &[]).await;
        }
    }
    set_on_call("OPSGENIE_API_URL", s().get("OPSGENIE_SCHEDULE_ID"), 1, &[]).await;
}

async fn pagerduty_down(down: bool) {
    http_json(
        reqwest::Method::PUT,
        &format!("{}/_testbed/down", s().get("PAGERDUTY_API_URL")),
        Some(json!({"down": down})),
    )
    .await;
}

/// Clicks Break Glass for `ps` as `user`: the request id and the ephemeral answer.
async fn click(user: &str, tag: &str, ps: &str) -> (String, String) {
    let body = seed_click(user, tag, s().get(ps));
    let id = request_id_of(&body);
    let (status, reply) = post_signed(&body).await;
    assert_eq!(status, 200, "{reply}");
    let text = serde_json::from_str::<Value>(&reply).unwrap()["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (id, text)
}

/// The approval requests posted for `id` to `channel` (chat.postMessage).
async fn approval_messages(id: &str, channel: &str) -> Vec<Value> {
    slack_requests()
        .await
        .into_iter()
        .filter(|r| r["path"] == "/api/chat.postMessage" && r["body"]["channel"] == channel)
        .map(|r| r["body"].clone())
        .filter(|b| {
            buttons(b)
                .iter()
                .any(|(a, v)| a == "approve_request" && v == id)
        })
        .collect()
}

/// Direct messages (chat.postMessage to a user id) whose text names `id`.
async fn told(user: &str, id: &str) -> Vec<String> {
    slack_requests()
        .await
        .into_iter()
        .filter(|r| r["path"] == "/api/chat.postMessage" && r["body"]["channel"] == user)
        .filter_map(|r| r["body"]["text"].as_str().map(str::to_owned))
        .filter(|t| t.contains(id))
        .collect()
}

/// The gated permission set was never assigned to `sso`, and `user` heard `outcome` in a
/// direct message about `id`.
async fn nothing_granted_and_told(user: &str, sso: &str, id: &str, outcome: &str) {
    assert_eq!(
        assignment_count(
            &principal(sso).await,
            s().get("EXAMPLE_GATED_PERMISSION_SET_ARN")
        )
        .await,
        0,
        "nothing granted"
    );
    eventually("the requester told", 20, || async {
        told(user, id)
            .await
            .into_iter()
            .find(|t| t.contains(outcome))
    })
    .await;
}

/// The example approver denies `id`.
async fn deny(id: &str) {
    let no = press(
        s().get("EXAMPLE_APPROVER_SLACK_USER_ID"),
        "deny_request",
        id,
    )
    .await;
    assert!(no.contains("Denied"), "{no}");
}

fn email_of(user: usize) -> String {
    s();
    spare_user(user).1
}

fn detail_of(trail: &[(String, String)], event: &str) -> String {
    trail
        .iter()
        .find(|(e, _)| e == event)
        .map(|(_, d)| d.clone())
        .unwrap_or_else(|| panic!("no {event} in {trail:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn whoever_is_on_call_is_granted_at_once() {
    let _turn = take_turn();
    let (user, _) = spare_user_of(0);
    nobody_on_call().await;
    set_on_call(
        "PAGERDUTY_API_URL",
        s().get("EXAMPLE_ONCALL_SCHEDULE_ID"),
        1,
        &[&email_of(0)],
    )
    .await;
    let (id, reply) = click(&user, "9100.1", "EXAMPLE_GATED_PERMISSION_SET_ARN").await;
    assert!(reply.contains("access incoming"), "{reply}");
    wait_granted(&id).await;
    let requested = detail_of(&audit_details(&id).await, "requested");
    assert!(
        requested.contains("on call: pagerduty:PBGSCHED1 level 1"),
        "the gate's decision is audited: {requested}"
    );
    assert!(
        approval_messages(&id, s().get("NOTIFY_CHANNEL"))
            .await
            .is_empty(),
        "no approval asked"
    );
    // The on-call service was asked as PagerDuty is: its path, filter and auth header.
    let asked = http_json(
        reqwest::Method::GET,
        &format!("{}/_testbed/requests", s().get("PAGERDUTY_API_URL")),
        None,
    )
    .await;
    let asked = asked.as_array().unwrap();
    assert!(
        asked.iter().any(|r| r["path"] == "/oncalls"
            && r["query"]["schedule_ids[]"] == json!(["PBGSCHED1"])
            && r["headers"]["Authorization"]
                .as_str()
                .is_some_and(|a| a.starts_with("Token token="))),
        "{asked:?}"
    );
}

fn spare_user_of(i: usize) -> (String, String) {
    s();
    spare_user(i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn anyone_else_needs_an_approver_and_never_approves_themselves() {
    let _turn = take_turn();
    let (user, _) = spare_user_of(1);
    let approver = s().get("EXAMPLE_APPROVER_SLACK_USER_ID").to_owned();
    nobody_on_call().await;
    set_on_call(
        "PAGERDUTY_API_URL",
        s().get("EXAMPLE_ONCALL_SCHEDULE_ID"),
        1,
        &["someone.else@example.com"],
    )
    .await;
    let (id, reply) = click(&user, "9200.1", "EXAMPLE_GATED_PERMISSION_SET_ARN").await;
    assert!(reply.contains("Approval needed"), "{reply}");
    assert!(reply.contains("not on call"), "{reply}");
    let message = eventually("the approval request", 30, || async {
        approval_messages(&id, s().get("NOTIFY_CHANNEL"))
            .await
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(
        buttons(&message),
        [
            ("approve_request".to_owned(), id.clone()),
            ("deny_request".to_owned(), id.clone())
        ]
    );
    let text = message["blocks"].to_string();
    assert!(text.contains(&format!("<@{user}>")), "{text}");
    // The approver named by Slack id gets it directly too, and so does Dave, a member of the
    // approver group (found in Slack by his Identity Center e-mail); the requester does not.
    let dave = s().get("GROUP_SLACK_USER_ID").to_owned();
    for to in [&approver, &dave] {
        eventually("an approver's direct message", 20, || async {
            approval_messages(&id, to).await.into_iter().next()
        })
        .await;
    }
    assert!(approval_messages(&id, &user).await.is_empty());
    // Another click on the same button: still waiting, nothing new.
    let body = seed_click_at(
        &user,
        "9200.1",
        "9200.12",
        s().get("EXAMPLE_GATED_PERMISSION_SET_ARN"),
    );
    let (_, again) = post_signed(&body).await;
    assert!(again.contains("waiting for approval"), "{again}");
    // The requester cannot approve their own request.
    let own = press(&user, "approve_request", &id).await;
    assert!(own.contains("cannot approve your own"), "{own}");
    assert!(
        audit_details(&id)
            .await
            .iter()
            .any(|(e, d)| e == "denied" && d.contains("two-person")),
        "the refusal is audited"
    );
    // Nor can someone who is not an approver (the responder of other flows).
    let other = press(s().get("RESPONDER_SLACK_USER_ID"), "approve_request", &id).await;
    assert!(other.contains("Only the rule's approvers"), "{other}");
    // Nor does the grant task, whoever invokes it, grant a request still waiting.
    let forced = reqwest::Client::new()
        .post(format!(
            "{}/2015-03-31/functions/{}/invocations",
            s().get("LAMBDA_ENDPOINT_URL"),
            s().get("WORKER_FUNCTION")
        ))
        .json(&json!({"type": "grant", "request_id": id}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(forced.contains("not approved"), "{forced}");
    assert_eq!(status_of(&id).await, "requested");
    assert_eq!(
        assignment_count(
            &principal(&spare_user(1).1).await,
            s().get("EXAMPLE_GATED_PERMISSION_SET_ARN")
        )
        .await,
        0,
        "nothing granted before the approval"
    );
    let ok = press(&approver, "approve_request", &id).await;
    assert!(ok.contains("Approved"), "{ok}");
    wait_granted(&id).await;
    let again = press(&approver, "deny_request", &id).await;
    assert!(
        again.contains("Already approved"),
        "the first decision stands: {again}"
    );
    let names = audit_names(&id).await;
    let at = |e: &str| {
        names
            .iter()
            .position(|n| n == e)
            .unwrap_or_else(|| panic!("{e} in {names:?}"))
    };
    assert!(at("approved") < at("granting"), "{names:?}");
    eventually("the requester told", 20, || async {
        told(&user, &id)
            .await
            .into_iter()
            .find(|t| t.contains("Approved by"))
    })
    .await;
    // The approval message shows the outcome, without buttons.
    let ts = eventually("the approval message's ts", 10, || async {
        request_item(&id)
            .await?
            .get("approval_ts")?
            .as_s()
            .ok()
            .cloned()
    })
    .await;
    let updated = eventually("the approval message updated", 20, || async {
        slack_requests()
            .await
            .into_iter()
            .find(|r| r["path"] == "/api/chat.update" && r["body"]["ts"] == ts)
    })
    .await;
    assert!(buttons(&updated["body"]).is_empty(), "{updated}");
    assert!(
        updated["body"].to_string().contains("Approved by"),
        "{updated}"
    );
    // So are the copies sent directly, each where Slack put it (its own conversation).
    copies_show(&id, 2, "Approved by").await;
}

/// Each of the `n` copies of `id`'s approval request sent to approvers directly was updated
/// in the conversation Slack put it in (not by user id, which Slack refuses), with `outcome`
/// and no buttons.
async fn copies_show(id: &str, n: usize, outcome: &str) {
    let copies = eventually("the copies recorded", 20, || async {
        let raw = request_item(id)
            .await?
            .get("approval_copies")?
            .as_s()
            .ok()?
            .clone();
        let copies: Vec<Value> = serde_json::from_str(&raw).unwrap();
        (copies.len() == n).then_some(copies)
    })
    .await;
    for copy in copies {
        let channel = copy["channel"].as_str().unwrap().to_owned();
        assert!(channel.starts_with('D'), "{copy}");
        let updated = eventually("a copy updated", 20, || async {
            slack_requests().await.into_iter().find(|r| {
                r["path"] == "/api/chat.update"
                    && r["body"]["channel"] == channel.as_str()
                    && r["body"]["ts"] == copy["ts"]
            })
        })
        .await;
        assert!(buttons(&updated["body"]).is_empty(), "{updated}");
        assert!(updated["body"].to_string().contains(outcome), "{updated}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn a_denied_request_grants_nothing_and_the_requester_hears_it() {
    let _turn = take_turn();
    let (user, sso) = spare_user_of(2);
    nobody_on_call().await;
    let (id, reply) = click(&user, "9300.1", "EXAMPLE_GATED_PERMISSION_SET_ARN").await;
    assert!(reply.contains("Approval needed"), "{reply}");
    eventually("the approval request", 30, || async {
        approval_messages(&id, s().get("NOTIFY_CHANNEL"))
            .await
            .into_iter()
            .next()
    })
    .await;
    // Dave decides as a member of the approver group.
    let no = press(s().get("GROUP_SLACK_USER_ID"), "deny_request", &id).await;
    assert!(no.contains("Denied"), "{no}");
    let (status, _) = finished(&id, 30).await;
    assert_eq!(status, aws_sdk_sfn::types::ExecutionStatus::Succeeded);
    let states = states_entered(&id).await;
    assert!(states.contains(&"NotApproved".to_owned()), "{states:?}");
    assert!(
        !states.contains(&"Grant".to_owned()),
        "never granted: {states:?}"
    );
    assert_eq!(status_of(&id).await, "revoked");
    let by_dave = format!("Denied by <@{}>", s().get("GROUP_SLACK_USER_ID"));
    nothing_granted_and_told(&user, &sso, &id, &by_dave).await;
    assert!(
        audit_names(&id)
            .await
            .contains(&"approval_denied".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn an_unanswered_request_expires_and_grants_nothing() {
    let (user, sso) = spare_user_of(3);
    let id = {
        let _turn = take_turn();
        nobody_on_call().await;
        let (id, reply) = click(&user, "9400.1", "EXAMPLE_GATED_PERMISSION_SET_ARN").await;
        assert!(
            reply.contains("12s"),
            "the requester hears how long it waits: {reply}"
        );
        id
    };
    // approval_timeout is 12 s: the wait times out and the request expires.
    let (status, _) = finished(&id, 60).await;
    assert_eq!(status, aws_sdk_sfn::types::ExecutionStatus::Succeeded);
    let states = states_entered(&id).await;
    assert!(
        states.ends_with(&[
            "ApprovalOver".to_owned(),
            "Approved".to_owned(),
            "NotApproved".to_owned()
        ]),
        "{states:?}"
    );
    assert_eq!(status_of(&id).await, "revoked");
    let item = request_item(&id).await.unwrap();
    assert_eq!(item["approval"].as_s().unwrap(), "expired");
    assert!(
        audit_names(&id)
            .await
            .contains(&"approval_expired".to_owned())
    );
    nothing_granted_and_told(&user, &sso, &id, "Expired").await;
    copies_show(&id, 2, "Expired").await;
    // A late approval changes nothing.
    let late = press(
        s().get("EXAMPLE_APPROVER_SLACK_USER_ID"),
        "approve_request",
        &id,
    )
    .await;
    assert!(late.contains("Already expired"), "{late}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn a_secondary_passes_only_where_its_level_is_listed() {
    let _turn = take_turn();
    let (user, _) = spare_user_of(4);
    nobody_on_call().await;
    let me = email_of(4);
    set_on_call(
        "PAGERDUTY_API_URL",
        s().get("EXAMPLE_ONCALL_SCHEDULE_ID"),
        2,
        &[&me],
    )
    .await;
    set_on_call(
        "PAGERDUTY_API_URL",
        s().get("SECONDARY_ONCALL_SCHEDULE_ID"),
        2,
        &[&me],
    )
    .await;
    // The gated rule counts level 1 only.
    let (id, reply) = click(&user, "9500.1", "EXAMPLE_GATED_PERMISSION_SET_ARN").await;
    assert!(reply.contains("Approval needed"), "{reply}");
    assert!(reply.contains("level 2"), "{reply}");
    deny(&id).await;
    // The secondary rule lists levels 1 and 2.
    let (id, reply) = click(&user, "9500.2", "SECONDARY_GATED_PERMISSION_SET_ARN").await;
    assert!(reply.contains("access incoming"), "{reply}");
    wait_granted(&id).await;
    assert!(detail_of(&audit_details(&id).await, "requested").contains("level 2"));
    // Not on call at all, and the rule says deny: refused, and nothing recorded but that.
    set_on_call(
        "PAGERDUTY_API_URL",
        s().get("SECONDARY_ONCALL_SCHEDULE_ID"),
        2,
        &[],
    )
    .await;
    let (user, _) = spare_user_of(5);
    let (id, reply) = click(&user, "9500.3", "SECONDARY_GATED_PERMISSION_SET_ARN").await;
    assert!(
        reply.contains("refused") && reply.contains("not on call"),
        "{reply}"
    );
    assert!(request_item(&id).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn an_unreachable_service_falls_back_as_the_rule_says_and_is_audited() {
    let _turn = take_turn();
    let (user, _) = spare_user_of(6);
    nobody_on_call().await;
    pagerduty_down(true).await;
    let (gated, gated_reply) = click(&user, "9600.1", "EXAMPLE_GATED_PERMISSION_SET_ARN").await;
    let (open, open_reply) = click(&user, "9600.2", "SECONDARY_GATED_PERMISSION_SET_ARN").await;
    pagerduty_down(false).await;
    // oncall_unreachable = "approve" (the default): approval instead.
    assert!(gated_reply.contains("Approval needed"), "{gated_reply}");
    assert!(
        gated_reply.contains("could not ask who is on call"),
        "{gated_reply}"
    );
    let requested = detail_of(&audit_details(&gated).await, "requested");
    assert!(requested.contains("PagerDuty (HTTP 503)"), "{requested}");
    deny(&gated).await;
    // oncall_unreachable = "allow": fails open, and says so in the audit trail.
    assert!(open_reply.contains("access incoming"), "{open_reply}");
    wait_granted(&open).await;
    let requested = detail_of(&audit_details(&open).await, "requested");
    assert!(requested.contains("oncall_unreachable"), "{requested}");
}

fn incident_submission(user: &str, view_id: &str, incident: Option<&str>) -> Vec<u8> {
    let s = s();
    submission_with_incident(
        user,
        view_id,
        s.get("EXAMPLE_ACCOUNT_ID"),
        s.get("INCIDENT_GATED_PERMISSION_SET_ARN"),
        "4s",
        Some("checkout is down"),
        incident,
    )
}

async fn put_incident(id: &str, status: &str) {
    http_json(
        reqwest::Method::PUT,
        &format!("{}/_testbed/incidents", s().get("PAGERDUTY_API_URL")),
        Some(json!({"id": id, "status": status, "title": "Checkout down"})),
    )
    .await;
}

/// The modal's field errors (`response_action: errors`), or `{}` when it closed.
async fn submit(body: &[u8]) -> Value {
    let (status, reply) = post_signed(body).await;
    assert_eq!(status, 200, "{reply}");
    let v: Value = serde_json::from_str(&reply).unwrap();
    if v["response_action"] == "clear" {
        json!({})
    } else {
        v["errors"].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)]
async fn a_rule_that_needs_an_incident_checks_it_and_links_it() {
    let (user, _) = spare_user_of(7);
    let id = {
        let _turn = take_turn();
        nobody_on_call().await;
        put_incident("Q0RESOLVED1", "resolved").await;
        put_incident("Q0OPEN0001", "triggered").await;
        // A Break Glass button cannot name an incident: refused, with a pointer to the form.
        let (_, reply) = click(&user, "9700.1", "INCIDENT_GATED_PERMISSION_SET_ARN").await;
        assert!(
            reply.contains("needs an open PagerDuty incident"),
            "{reply}"
        );
        let errors = submit(&incident_submission(&user, "V0INC0001", None)).await;
        assert!(
            errors["incident"]
                .as_str()
                .unwrap_or_default()
                .contains("needs an open PagerDuty incident"),
            "{errors}"
        );
        let errors = submit(&incident_submission(&user, "V0INC0002", Some("Q0NOSUCH01"))).await;
        assert!(
            errors["incident"]
                .as_str()
                .unwrap_or_default()
                .contains("no incident"),
            "{errors}"
        );
        let errors = submit(&incident_submission(
            &user,
            "V0INC0003",
            Some("https://acme.pagerduty.com/incidents/Q0RESOLVED1"),
        ))
        .await;
        assert!(
            errors["incident"]
                .as_str()
                .unwrap_or_default()
                .contains("resolved"),
            "{errors}"
        );
        let errors = submit(&incident_submission(
            &user,
            "V0INC0004",
            Some("javascript:alert(1)"),
        ))
        .await;
        assert!(errors["incident"].is_string(), "{errors}");
        // An open incident, but not on call in Opsgenie, and the rule says deny.
        let errors = submit(&incident_submission(&user, "V0INC0005", Some("Q0OPEN0001"))).await;
        assert!(
            errors["permission_set"]
                .as_str()
                .unwrap_or_default()
                .contains("not on call"),
            "{errors}"
        );
        set_on_call(
            "OPSGENIE_API_URL",
            s().get("OPSGENIE_SCHEDULE_ID"),
            1,
            &[&email_of(7)],
        )
        .await;
        let errors = submit(&incident_submission(
            &user,
            "V0INC0006",
            Some("https://acme.pagerduty.com/incidents/Q0OPEN0001"),
        ))
        .await;
        assert_eq!(errors, json!({}));
        break_glass::domain::RequestId::derive(&[
            s().get("SLACK_TEAM_ID"),
            &user,
            "modal",
            "V0INC0006",
        ])
        .to_string()
    };
    wait_granted(&id).await;
    let requested = detail_of(&audit_details(&id).await, "requested");
    assert!(requested.contains("incident Q0OPEN0001"), "{requested}");
    assert!(requested.contains("on call: opsgenie:"), "{requested}");
    // The 4 s lease ends; the report's summary becomes a note on the incident.
    let notes = eventually("the note on the incident", 60, || async {
        let v = http_json(
            reqwest::Method::GET,
            &format!(
                "{}/_testbed/incidents/Q0OPEN0001/notes",
                s().get("PAGERDUTY_API_URL")
            ),
            None,
        )
        .await;
        v.as_array().filter(|a| !a.is_empty()).cloned()
    })
    .await;
    let note = notes[0]["content"].as_str().unwrap();
    assert!(note.contains(&id) && note.contains("events"), "{note}");
    // The review message links the incident.
    let review = eventually("the review message", 60, || async {
        slack_requests()
            .await
            .into_iter()
            .map(|r| r["body"].clone())
            .find(|b| {
                b["channel"] == s().get("REVIEW_CHANNEL")
                    && buttons(b).iter().any(|(_, v)| *v == id)
            })
    })
    .await;
    assert!(
        review["blocks"]
            .to_string()
            .contains("incidents/Q0OPEN0001|Q0OPEN0001"),
        "{review}"
    );
}
