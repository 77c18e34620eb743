//! Access ends the moment it should, on the local stack: the Hold waits on a callback token,
//! End access now completes it at once and for good, lease clicks act once per click, Break
//! Glass buttons are reusable, and a grant that lands after its revoke is never kept.
//!
//! Leases last 24 h here (the policy allows up to 24 h), so nothing ends by itself unless a
//! test asks for a short lease; AWS call attempts may take 20 s, so that a slow
//! `CreateAccountAssignment` (injected by the test bed) is not retried by the SDK.

mod common;

use aws_sdk_sfn::types::ExecutionStatus;
use common::*;
use serde_json::{Value, json};

fn s() -> &'static Stack {
    stack_configured("24h", 20)
}

/// A spare user of the test bed (the stack started first, with this binary's settings).
fn user(i: usize) -> (String, String) {
    s();
    spare_user(i)
}

/// The reconciler looks at the whole stack: the tests that set up late grants take turns.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn click(user: &str, message_ts: &str, action_ts: &str) -> (String, String) {
    let body = seed_click_at(
        user,
        message_ts,
        action_ts,
        s().get("EXAMPLE_PERMISSION_SET_ARN"),
    );
    let id = request_id_of(&body);
    let (status, reply) = post_signed(&body).await;
    assert_eq!(status, 200, "{reply}");
    let text = serde_json::from_str::<Value>(&reply).unwrap()["text"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, text)
}

async fn assigned(sso_user: &str) -> usize {
    assignment_count(
        &principal(sso_user).await,
        s().get("EXAMPLE_PERMISSION_SET_ARN"),
    )
    .await
}

/// End access now on a 24 h lease removes the assignment through the Hold's callback: no
/// timeout, no re-check, and a handful of state transitions whatever the lease's length.
#[tokio::test]
async fn end_access_now_completes_the_hold_at_once() {
    let (user, sso) = user(0);
    let (id, reply) = click(&user, "1700000601.000100", "1700000601.000101").await;
    assert_eq!(reply, "Glass broken - access incoming");
    wait_granted(&id).await;
    assert_eq!(assigned(&sso).await, 1);
    let lease_end = expires_of(&id).await - time::OffsetDateTime::now_utc();
    assert!(lease_end > time::Duration::hours(23), "{lease_end}");
    eventually("the hold to store its token", 30, || async {
        request_item(&id)
            .await?
            .contains_key("hold_token")
            .then_some(())
    })
    .await;
    // Held a while: with a polling hold, this is where transitions pile up.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    let reply = press(&user, "end_access", &id).await;
    assert!(reply.contains("being removed now"), "{reply}");
    eventually("the assignment to go", 30, || async {
        (assigned(&sso).await == 0).then_some(())
    })
    .await;
    assert_eq!(finished(&id, 60).await.0, ExecutionStatus::Succeeded);
    let states = states_entered(&id).await;
    assert_eq!(
        states[..5],
        ["NeedsApproval", "Grant", "Hold", "LeaseOver", "Revoke"],
        "the Hold ended by its callback, not a timeout: {states:?}"
    );
    assert!(!states.iter().any(|s| s == "CheckLease"), "{states:?}");
    assert!(
        states.len() <= 15,
        "a 24 h lease costs a handful of transitions: {} ({states:?})",
        states.len()
    );
}

/// End is final: the requester's Extend one second after their own End, and after a
/// responder's End, is refused with the reason, and the access ends for good.
#[tokio::test]
async fn extend_after_end_is_refused_whoever_ended_it() {
    for (n, ender) in [(1, None), (2, Some(s().get("RESPONDER_SLACK_USER_ID")))] {
        let (user, sso) = user(n);
        let (id, _) = click(
            &user,
            &format!("170000060{n}.000200"),
            &format!("170000060{n}.000201"),
        )
        .await;
        wait_granted(&id).await;
        let before = expires_of(&id).await;
        let reply = press(ender.unwrap_or(&user), "end_access", &id).await;
        assert!(reply.contains("being removed now"), "{reply}");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let reply = press(&user, "extend_access", &id).await;
        assert!(
            reply.contains("cannot be extended"),
            "Extend after End must be refused: {reply}"
        );
        assert!(
            expires_of(&id).await < before,
            "the end stays where End put it"
        );
        eventually("the assignment to go", 30, || async {
            (assigned(&sso).await == 0).then_some(())
        })
        .await;
        assert_eq!(finished(&id, 60).await.0, ExecutionStatus::Succeeded);
        let trail = audit_names(&id).await;
        assert!(!trail.contains(&"extended".to_owned()), "{trail:?}");
        assert_eq!(assigned(&sso).await, 0, "still gone after the report");
    }
}

/// Extend, then End, then Extend: the first extends once however often its click arrives
/// (one after another, and twice at once); after End no Extend brings the access back.
#[tokio::test]
async fn a_lease_click_acts_once_and_end_wins_over_a_later_extend() {
    let (user, sso) = user(3);
    let body = submission(
        &user,
        "V-hold-extend",
        s().get("EXAMPLE_ACCOUNT_ID"),
        s().get("EXAMPLE_PERMISSION_SET_ARN"),
        "1h",
        None,
    );
    assert_eq!(post_signed(&body).await.0, 200);
    let id = break_glass::domain::RequestId::derive(&[
        s().get("SLACK_TEAM_ID"),
        &user,
        "modal",
        "V-hold-extend",
    ])
    .to_string();
    wait_granted(&id).await;
    let first = expires_of(&id).await;

    let reply = press_click(&user, "extend_access", &id, "1700000604.000001").await;
    assert!(reply.contains("Extended until"), "{reply}");
    let again = press_click(&user, "extend_access", &id, "1700000604.000001").await;
    assert_eq!(
        again, reply,
        "the same click delivered again gets the same answer"
    );
    let twice = futures_util::future::join_all(
        (0..2).map(|_| press_click(&user, "extend_access", &id, "1700000604.000002")),
    )
    .await;
    for r in &twice {
        assert!(r.contains("Extended until"), "{r}");
    }
    assert_eq!(
        (expires_of(&id).await - first).whole_seconds(),
        2 * 3600,
        "two clicks, two extensions of 1 h, however often each arrived"
    );
    let extended = audit_names(&id)
        .await
        .into_iter()
        .filter(|e| e == "extended")
        .count();
    assert_eq!(extended, 2);

    let reply = press(s().get("RESPONDER_SLACK_USER_ID"), "end_access", &id).await;
    assert!(reply.contains("being removed now"), "{reply}");
    let reply = press(&user, "extend_access", &id).await;
    assert!(reply.contains("cannot be extended"), "{reply}");
    eventually("the assignment to go", 30, || async {
        (assigned(&sso).await == 0).then_some(())
    })
    .await;
    assert_eq!(finished(&id, 60).await.0, ExecutionStatus::Succeeded);
}

/// Extend moves the end of a short lease: the Hold that times out at the old end looks again
/// and waits for the rest, so the access outlives its first end and ends at the new one.
#[tokio::test]
async fn extend_re_arms_the_hold() {
    let (user, sso) = user(4);
    let body = submission(
        &user,
        "V-hold-rearm",
        s().get("EXAMPLE_ACCOUNT_ID"),
        s().get("EXAMPLE_PERMISSION_SET_ARN"),
        "8s",
        None,
    );
    assert_eq!(post_signed(&body).await.0, 200);
    let id = break_glass::domain::RequestId::derive(&[
        s().get("SLACK_TEAM_ID"),
        &user,
        "modal",
        "V-hold-rearm",
    ])
    .to_string();
    wait_granted(&id).await;
    let old_end = expires_of(&id).await;
    let reply = press(&user, "extend_access", &id).await;
    assert!(reply.contains("Extended until"), "{reply}");
    let new_end = expires_of(&id).await;
    assert_eq!((new_end - old_end).whole_seconds(), 8);

    let until_old_end = old_end - time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    tokio::time::sleep(until_old_end.try_into().unwrap_or_default()).await;
    assert_eq!(
        (status_of(&id).await.as_str(), assigned(&sso).await),
        ("granted", 1),
        "still granted after the first end"
    );
    assert_eq!(finished(&id, 60).await.0, ExecutionStatus::Succeeded);
    let revoked = time::OffsetDateTime::parse(
        request_item(&id).await.unwrap()["revoked_at"]
            .as_s()
            .unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(revoked >= new_end, "{revoked} before {new_end}");
    assert_eq!(assigned(&sso).await, 0);
    let checks = states_entered(&id)
        .await
        .into_iter()
        .filter(|s| s == "CheckLease")
        .count();
    assert_eq!(checks, 2, "one look at the old end, one at the new");
}

/// A Break Glass button is reusable: a click while the access is live changes nothing, a
/// click after it ended grants again (a new request, a new execution), and duplicate
/// deliveries of that click still start one execution.
#[tokio::test]
async fn the_button_works_again_once_the_access_has_ended() {
    let user = s().get("EXAMPLE_SLACK_USER_ID");
    let sso = s().get("EXAMPLE_SSO_USER_NAME");
    let sfn = aws_sdk_sfn::Client::new(&sdk().await);
    let message = "1700000605.000100";
    let (first, reply) = click(user, message, "1700000605.000101").await;
    assert_eq!(reply, "Glass broken - access incoming");
    wait_granted(&first).await;

    let (while_live, reply) = click(user, message, "1700000605.000102").await;
    assert!(
        reply.contains("You already have this access until"),
        "{reply}"
    );
    assert!(reply.contains(&first), "{reply}");
    assert!(executions_named(&sfn, &while_live).await.is_empty());
    assert!(request_item(&while_live).await.is_none());

    let reply = press(user, "end_access", &first).await;
    assert!(reply.contains("being removed now"), "{reply}");
    // A revoke waits its turn behind the other tests' calls on a loaded machine.
    eventually("the revoke", 60, || async {
        (status_of(&first).await != "granted").then_some(())
    })
    .await;

    // Clicked again after the access ended (its execution may still be reporting).
    let body = seed_click_at(
        user,
        message,
        "1700000605.000103",
        s().get("EXAMPLE_PERMISSION_SET_ARN"),
    );
    let second = request_id_of(&body);
    assert_ne!(second, first);
    let replies = futures_util::future::join_all((0..4).map(|_| post_signed(&body))).await;
    for (status, reply) in replies {
        assert_eq!(status, 200);
        assert!(reply.contains("Glass broken - access incoming"), "{reply}");
    }
    wait_granted(&second).await;
    assert_eq!(assigned(sso).await, 1, "granted again");
    assert_eq!(executions_named(&sfn, &second).await.len(), 1);
    assert_eq!(finished(&first, 60).await.0, ExecutionStatus::Succeeded);
    press(user, "end_access", &second).await;
    assert_eq!(finished(&second, 60).await.0, ExecutionStatus::Succeeded);
    assert_eq!(assigned(sso).await, 0);
}

/// Starts a grant whose `CreateAccountAssignment` is slow, stops its execution and revokes
/// while that call is on its way, then waits for the assignment to land after the revoke.
async fn late_grant(user: &str, sso: &str, message: &str) -> String {
    let who = principal(sso).await;
    inject_fault(json!({"operation": "CreateAccountAssignment", "times": 1,
                        "slow_seconds": 6, "match": who}))
    .await;
    let (id, _) = click(user, message, &format!("{message}1")).await;
    // The state machine gives up on the grant (here: stopped) and its Revoke runs while the
    // create is still on its way: nothing to delete yet.
    revoke_while_creating(&id).await;
    assert_eq!(status_of(&id).await, "revoked");
    eventually("the late assignment", 30, || async {
        (assigned(sso).await == 1).then_some(())
    })
    .await;
    id
}

/// A grant that creates its assignment after Revoke ran is revoked by the next reconcile,
/// audited and announced; it is never kept as standing access.
#[tokio::test]
async fn a_grant_landing_after_its_revoke_is_removed_by_the_reconciler() {
    let _turn = TURN.lock().await;
    let user = s().get("SECOND_SLACK_USER_ID");
    let sso = s().get("SECOND_SSO_USER_NAME");
    let id = late_grant(user, sso, "1700000606.000100").await;

    let summary = invoke_worker(json!({"type": "reconcile"})).await;
    let who = principal(sso).await;
    let finding = summary["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["principal_id"] == who.as_str())
        .unwrap_or_else(|| panic!("no finding for the late grant: {summary}"));
    assert_eq!(finding["action"], "revoked", "{finding}");
    assert_eq!(finding["break_glass"], true, "{finding}");
    assert!(
        finding["why"].as_str().unwrap().contains("late grant"),
        "{finding}"
    );
    assert_eq!(assigned(sso).await, 0);
    let trail = audit_names(&id).await;
    assert!(
        trail.contains(&"late_grant_revoked".to_owned()),
        "{trail:?}"
    );
    let told = slack_requests().await.iter().any(|r| {
        r.to_string().contains("landed after the access had ended") && r.to_string().contains(sso)
    });
    assert!(told, "the requester and the thread hear of it");

    let again = invoke_worker(json!({"type": "reconcile"})).await;
    let kept = again["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["principal_id"] == who.as_str());
    assert!(!kept, "nothing left to find: {again}");
}

/// The same person breaking glass again after a late grant landed takes the assignment over
/// as break glass's own (not standing access), so its End deletes it.
#[tokio::test]
async fn a_late_grant_is_never_taken_for_standing_access() {
    let _turn = TURN.lock().await;
    let user = s().get("EMAIL_SLACK_USER_ID");
    let sso = s().get("EMAIL_SSO_USER_NAME");
    let message = "1700000607.000100";
    late_grant(user, sso, message).await;

    let (next, _) = click(user, message, "1700000607.000102").await;
    wait_granted(&next).await;
    let rec = request_item(&next).await.unwrap();
    assert_eq!(
        rec["preexisting"].as_bool().unwrap(),
        &false,
        "not standing access"
    );
    let joined = audit_details(&next)
        .await
        .into_iter()
        .find(|(e, _)| e == "lease_joined")
        .unwrap();
    assert!(joined.1.contains("late grant"), "{joined:?}");
    press(user, "end_access", &next).await;
    eventually("the assignment to go", 30, || async {
        (assigned(sso).await == 0).then_some(())
    })
    .await;
    assert_eq!(finished(&next, 60).await.0, ExecutionStatus::Succeeded);
}

/// A request that joins a lease whose assignment is still being created is granted only once
/// the assignment exists; when the first request ends, Slack says the access continues under
/// the other one (it does), and the last one out removes it.
#[tokio::test]
async fn a_shared_lease_waits_for_its_assignment_and_says_the_truth() {
    let (user, sso) = user(6);
    let who = principal(&sso).await;
    inject_fault(json!({"operation": "CreateAccountAssignment", "times": 1,
                        "slow_seconds": 4, "match": who}))
    .await;
    let (first, _) = click(&user, "1700000608.000100", "1700000608.000101").await;
    eventually("the create call", 30, || async {
        audit_names(&first)
            .await
            .contains(&"creating".to_owned())
            .then_some(())
    })
    .await;
    let (second, _) = click(&user, "1700000608.000200", "1700000608.000201").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (joined, exists) = (status_of(&second).await, assigned(&sso).await);
        assert!(
            !(joined == "granted" && exists == 0),
            "the joiner was granted before the assignment existed"
        );
        if joined == "granted" && status_of(&first).await == "granted" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "both granted in time");
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    assert_eq!(
        request_item(&second).await.unwrap()["shared"]
            .as_bool()
            .unwrap(),
        &true
    );

    press(&user, "end_access", &first).await;
    assert_eq!(finished(&first, 60).await.0, ExecutionStatus::Succeeded);
    assert_eq!(assigned(&sso).await, 1, "the second lease still needs it");
    let said = slack_requests()
        .await
        .into_iter()
        .map(|r| r.to_string())
        .find(|r| r.contains(&format!("Request `{first}`")) && r.contains("has ended"))
        .expect("the first request's end was announced");
    assert!(
        said.contains(&format!("access continues under request `{second}`")),
        "{said}"
    );
    press(&user, "end_access", &second).await;
    assert_eq!(finished(&second, 60).await.0, ExecutionStatus::Succeeded);
    assert_eq!(assigned(&sso).await, 0);
}

/// Two leases on one assignment, the first one's execution stopped: the reconciler retires
/// it although the second is live, and keeps the assignment for the second.
#[tokio::test]
async fn the_reconciler_retires_every_finished_holder() {
    let _turn = TURN.lock().await;
    let (user, sso) = user(7);
    let (first, _) = click(&user, "1700000609.000100", "1700000609.000101").await;
    wait_granted(&first).await;
    let (second, _) = click(&user, "1700000609.000200", "1700000609.000201").await;
    wait_granted(&second).await;
    stop_execution_and_wait(&first).await;

    let summary = invoke_worker(json!({"type": "reconcile"})).await;
    let who = principal(&sso).await;
    let finding = summary["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["principal_id"] == who.as_str())
        .unwrap_or_else(|| panic!("no finding: {summary}"))
        .clone();
    assert_eq!(finding["action"], "kept", "{finding}");
    let why = finding["why"].as_str().unwrap();
    assert!(
        why.contains(&format!("{first}: its execution was stopped")),
        "{why}"
    );
    assert_eq!(
        status_of(&first).await,
        "revoked",
        "the finished holder is retired"
    );
    assert_eq!(status_of(&second).await, "granted");
    assert_eq!(assigned(&sso).await, 1);
    press(&user, "end_access", &second).await;
    assert_eq!(finished(&second, 60).await.0, ExecutionStatus::Succeeded);
    assert_eq!(assigned(&sso).await, 0);
}
