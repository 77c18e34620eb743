//! Leases on the local stack: End access now, Extend, strangers refused, overlapping leases
//! sharing one assignment, standing access kept, duplicate task delivery, and a request no
//! longer granting refused by the store itself. Leases last 60 s here; End access now
//! completes the Hold at once.

mod common;

use common::*;
use serde_json::json;

fn s() -> &'static Stack {
    stack_with("60s")
}

async fn click_and_wait_granted(user: &str, message_ts: &str, ps: &str) -> String {
    let body = seed_click(user, message_ts, ps);
    let id = request_id_of(&body);
    let (status, reply) = post_signed(&body).await;
    assert_eq!(status, 200, "{reply}");
    eventually("the grant", 60, || async {
        (status_of(&id).await == "granted").then_some(())
    })
    .await;
    id
}

#[tokio::test]
async fn end_access_now_from_the_requester_revokes_and_a_stranger_changes_nothing() {
    let ps = s().get("EXAMPLE_PERMISSION_SET_ARN");
    let carol = principal(s().get("EMAIL_SSO_USER_NAME")).await;
    let id = click_and_wait_granted(s().get("EMAIL_SLACK_USER_ID"), "1700000201.000100", ps).await;
    assert_eq!(assignment_count(&carol, ps).await, 1);

    // The grant's message to the channel records its thread, and the Hold its callback
    // token; wait for both, then compare.
    eventually("the thread and the hold", 30, || async {
        let rec = request_item(&id).await.unwrap();
        (rec.contains_key("thread_ts") && rec.contains_key("hold_token")).then_some(())
    })
    .await;
    let before = request_item(&id).await.unwrap();
    let reply = press(s().get("SECOND_SLACK_USER_ID"), "end_access", &id).await;
    assert!(
        reply.contains("Only the requester or a responder"),
        "{reply}"
    );
    let reply = press(s().get("SECOND_SLACK_USER_ID"), "extend_access", &id).await;
    assert!(
        reply.contains("Only the requester or a responder"),
        "{reply}"
    );
    assert_eq!(
        request_item(&id).await.unwrap(),
        before,
        "a stranger's clicks change nothing"
    );

    let reply = press(s().get("EMAIL_SLACK_USER_ID"), "end_access", &id).await;
    assert!(reply.contains("being removed"), "{reply}");
    let started = std::time::Instant::now();
    eventually("the revoke", 30, || async {
        (assignment_count(&carol, ps).await == 0).then_some(())
    })
    .await;
    assert!(
        started.elapsed().as_secs() < 30,
        "removed well within a minute"
    );
    assert_eq!(
        finished(&id, 90).await.0,
        aws_sdk_sfn::types::ExecutionStatus::Succeeded
    );

    let rec = request_item(&id).await.unwrap();
    let granted = time::OffsetDateTime::parse(
        rec["granted_at"].as_s().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let revoked = time::OffsetDateTime::parse(
        rec["revoked_at"].as_s().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        (revoked - granted).whole_seconds() < 50,
        "the real window, not the 60 s lease"
    );
    assert_eq!(
        rec["ended_by"].as_s().unwrap(),
        s().get("EMAIL_SLACK_USER_ID")
    );
    let events: Vec<String> = audit_events(&id)
        .await
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    assert!(events.contains(&"ended_early".to_owned()), "{events:?}");
    assert!(events.contains(&"reported".to_owned()), "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("after_end_checked"));
}

#[tokio::test]
async fn extend_moves_the_end_up_to_the_maximum_and_a_responder_may_end_it() {
    let ps = s().get("READONLY_PERMISSION_SET_ARN");
    let dave_slack = s().get("GROUP_SLACK_USER_ID");
    let dave = principal(s().get("GROUP_SSO_USER_NAME")).await;
    // Dave's rule (by group, ReadOnly) allows at most 1h and needs a reason: use the modal.
    let body = submission(
        dave_slack,
        "V-extend-1",
        s().get("EXAMPLE_ACCOUNT_ID"),
        "ReadOnly",
        "15m",
        Some("incident 42"),
    );
    assert_eq!(post_signed(&body).await.0, 200);
    let id = break_glass::domain::RequestId::derive(&[
        s().get("SLACK_TEAM_ID"),
        dave_slack,
        "modal",
        "V-extend-1",
    ])
    .to_string();
    eventually("the grant", 60, || async {
        (status_of(&id).await == "granted").then_some(())
    })
    .await;
    assert_eq!(assignment_count(&dave, ps).await, 1);
    let expires =
        |rec: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>| {
            time::OffsetDateTime::parse(
                rec["expires_at"].as_s().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
        };
    let first = expires(&request_item(&id).await.unwrap());

    let reply = press(s().get("EXAMPLE_SLACK_USER_ID"), "extend_access", &id).await;
    assert!(reply.contains("Only the requester"), "{reply}");
    let reply = press(dave_slack, "extend_access", &id).await;
    assert!(reply.contains("Extended until"), "{reply}");
    let second = expires(&request_item(&id).await.unwrap());
    assert_eq!(
        (second - first).whole_seconds(),
        15 * 60,
        "extended by the request's duration"
    );
    for _ in 0..2 {
        let reply = press(dave_slack, "extend_access", &id).await;
        assert!(reply.contains("Extended until"), "{reply}");
    }
    let granted = time::OffsetDateTime::parse(
        request_item(&id).await.unwrap()["granted_at"]
            .as_s()
            .unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        (expires(&request_item(&id).await.unwrap()) - granted).whole_seconds(),
        3600,
        "capped at the rule's 1h"
    );
    let reply = press(dave_slack, "extend_access", &id).await;
    assert!(reply.contains("already at its maximum"), "{reply}");

    // A responder may end anyone's access.
    let reply = press(s().get("RESPONDER_SLACK_USER_ID"), "end_access", &id).await;
    assert!(reply.contains("being removed"), "{reply}");
    eventually("the revoke", 30, || async {
        (assignment_count(&dave, ps).await == 0).then_some(())
    })
    .await;
    assert_eq!(
        finished(&id, 90).await.0,
        aws_sdk_sfn::types::ExecutionStatus::Succeeded
    );
    let trail = audit_events(&id).await;
    assert!(
        trail.contains(&("extended".into(), dave_slack.into())),
        "{trail:?}"
    );
    assert!(
        trail.contains(&(
            "ended_early".into(),
            s().get("RESPONDER_SLACK_USER_ID").into()
        )),
        "{trail:?}"
    );
}

#[tokio::test]
async fn overlapping_leases_share_the_assignment_until_the_last_one_ends() {
    let ps = s().get("EXAMPLE_PERMISSION_SET_ARN");
    let alice_slack = s().get("EXAMPLE_SLACK_USER_ID");
    let alice = principal(s().get("EXAMPLE_SSO_USER_NAME")).await;
    let first = click_and_wait_granted(alice_slack, "1700000203.000100", ps).await;
    let second = click_and_wait_granted(alice_slack, "1700000203.000200", ps).await;
    assert_ne!(first, second);
    assert_eq!(
        assignment_count(&alice, ps).await,
        1,
        "one assignment for both leases"
    );
    assert_eq!(
        request_item(&second).await.unwrap()["shared"]
            .as_bool()
            .unwrap(),
        &true
    );

    // A repeated delivery of the grant task acts nothing twice.
    let again =
        invoke_worker(json!({"type": "grant", "request_id": first, "poll_seconds": 1})).await;
    assert_eq!(
        again["expires_at"].as_str().unwrap(),
        request_item(&first).await.unwrap()["expires_at"]
            .as_s()
            .unwrap()
    );
    assert_eq!(
        assignment_count(&alice, ps).await,
        1,
        "no second assignment"
    );

    press(alice_slack, "end_access", &first).await;
    assert_eq!(
        finished(&first, 90).await.0,
        aws_sdk_sfn::types::ExecutionStatus::Succeeded
    );
    assert_eq!(
        assignment_count(&alice, ps).await,
        1,
        "the second lease still needs it"
    );
    let events: Vec<String> = audit_events(&first)
        .await
        .into_iter()
        .map(|(e, _)| e)
        .collect();
    assert!(events.contains(&"revoked".to_owned()));

    // A repeated delivery of the first lease's revoke changes nothing either.
    invoke_worker(json!({"type": "revoke", "request_id": first})).await;
    assert_eq!(assignment_count(&alice, ps).await, 1);

    press(alice_slack, "end_access", &second).await;
    eventually("the last lease's revoke", 30, || async {
        (assignment_count(&alice, ps).await == 0).then_some(())
    })
    .await;
    assert_eq!(
        finished(&second, 90).await.0,
        aws_sdk_sfn::types::ExecutionStatus::Succeeded
    );
}

#[tokio::test]
async fn standing_access_survives_a_whole_cycle() {
    let ps = s().get("EXAMPLE_PERMISSION_SET_ARN");
    let bob = principal(s().get("SECOND_SSO_USER_NAME")).await;
    let sso = aws_sdk_ssoadmin::Client::new(&sdk().await);
    sso.create_account_assignment()
        .instance_arn(s().get("SSO_INSTANCE_ARN"))
        .target_id(s().get("EXAMPLE_ACCOUNT_ID"))
        .target_type(aws_sdk_ssoadmin::types::TargetType::AwsAccount)
        .permission_set_arn(ps)
        .principal_type(aws_sdk_ssoadmin::types::PrincipalType::User)
        .principal_id(&bob)
        .send()
        .await
        .unwrap();
    let id = click_and_wait_granted(s().get("SECOND_SLACK_USER_ID"), "1700000204.000100", ps).await;
    assert_eq!(
        request_item(&id).await.unwrap()["preexisting"]
            .as_bool()
            .unwrap(),
        &true
    );
    press(s().get("SECOND_SLACK_USER_ID"), "end_access", &id).await;
    assert_eq!(
        finished(&id, 90).await.0,
        aws_sdk_sfn::types::ExecutionStatus::Succeeded
    );
    assert_eq!(
        assignment_count(&bob, ps).await,
        1,
        "standing access is never deleted by us"
    );
    let revoked = audit_events(&id)
        .await
        .into_iter()
        .find(|(e, _)| e == "revoked");
    assert!(revoked.is_some());
}

/// A request that is no longer granting takes no access, whoever asks the store: joining a
/// lease and recording a creation intent are refused for a request read afresh after its
/// revoke (their writes are fenced on the status the caller read, which must itself be
/// `granting`), and nothing is written.
#[tokio::test]
async fn a_request_that_is_no_longer_granting_joins_no_lease_and_intends_no_creation() {
    use break_glass::domain::lease::{Intent, Lease, first_lease};
    use break_glass::domain::request::Audit;
    use break_glass::domain::{AccountId, RequestId};
    use break_glass::error::Error;
    let ps = s().get("EXAMPLE_PERMISSION_SET_ARN");
    let (user, sso) = spare_user(0);
    let id = click_and_wait_granted(&user, "1700000205.000100", ps).await;
    press(&user, "end_access", &id).await;
    assert_eq!(
        finished(&id, 90).await.0,
        aws_sdk_sfn::types::ExecutionStatus::Succeeded
    );
    let store = break_glass::aws::store::Store::new(
        aws_sdk_dynamodb::Client::new(&sdk().await),
        s().get("TABLE_NAME"),
    );
    let rid = RequestId::parse(&id).unwrap();
    let rec = store.get(&rid).await.unwrap().unwrap();
    assert_eq!(rec.status.as_str(), "reported", "the whole cycle is over");
    let principal = principal(&sso).await;
    let account = AccountId::parse(s().get("EXAMPLE_ACCOUNT_ID")).unwrap();
    let key = Lease::key(&principal, &account, &rec.permission_set_arn);
    let intent = Intent {
        key: Intent::key(&principal, &account, &rec.permission_set_arn),
        request_id: id.clone(),
        at: time::OffsetDateTime::now_utc(),
    };
    let (lease_before, intent_before) = (
        store.lease(&key).await.unwrap(),
        store.intent(&intent.key).await.unwrap(),
    );
    let audit = || Audit {
        event: "lease_joined",
        actor: "test",
        detail: "a late grant".into(),
    };
    let (lease, _) = first_lease(&key, &id, false, None);
    let joined = store.join_lease(&rec, &lease, None, vec![], audit()).await;
    assert!(matches!(joined, Err(Error::StateConflict(_))), "{joined:?}");
    let intended = store.intend_creation(&rec, &intent, audit()).await;
    assert!(
        matches!(intended, Err(Error::StateConflict(_))),
        "{intended:?}"
    );
    assert_eq!(store.lease(&key).await.unwrap(), lease_before);
    assert_eq!(store.intent(&intent.key).await.unwrap(), intent_before);
    assert_eq!(store.get(&rid).await.unwrap().unwrap().version, rec.version);
    assert_eq!(assignment_count(&principal, ps).await, 0);
}
