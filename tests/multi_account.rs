//! Several accounts in one break glass, on the local stack: one modal submission, one request
//! and execution, each account granted and revoked on its own; End access now removes them
//! all; one report and one review cover them all. The test bed's `multi-account` rule lets
//! ken ask for the example account and a second one (`max_accounts = 2`) with their own
//! permission set, so nothing here touches another suite's leases.
//!
//! The tests take turns: one of them injects a fault on the second account.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// 4 s leases by default; AWS call attempts may take 20 s, so that a slow create can land
/// after its request was revoked.
fn s() -> &'static Stack {
    stack_configured("4s", 20)
}

fn ken() -> &'static str {
    s().get("MULTI_ACCOUNT_SLACK_USER_ID")
}

fn ps() -> &'static str {
    s().get("MULTI_ACCOUNT_PERMISSION_SET_ARN")
}

fn both() -> [&'static str; 2] {
    [s().get("EXAMPLE_ACCOUNT_ID"), s().get("SECOND_ACCOUNT_ID")]
}

/// Submits the form; the request id (derived from the view, as the webhook does).
async fn submit(accounts: &[&str], view_id: &str, duration: &str) -> (String, Value) {
    let body = submission_of_accounts(ken(), view_id, accounts, ps(), duration);
    let (status, reply) = post_signed(&body).await;
    assert_eq!(status, 200, "{reply}");
    (
        modal_request_id(ken(), view_id),
        serde_json::from_str(&reply).unwrap(),
    )
}

/// Whether ken holds the permission set on `account`.
async fn assigned(account: &str) -> bool {
    assigned_on(&principal("ken@example.com").await, account, ps()).await
}

/// Waits for `id`'s execution to succeed; then ken holds the permission set on neither
/// account.
async fn succeeded_and_removed(id: &str) {
    let (status, error) = finished(id, 120).await;
    assert_eq!(
        status,
        aws_sdk_sfn::types::ExecutionStatus::Succeeded,
        "{error:?}"
    );
    let [first, second] = both();
    assert!(!assigned(first).await && !assigned(second).await);
}

async fn seed_events(account: &str, name: &str) {
    let arn = format!(
        "arn:aws:sts::{account}:assumed-role/AWSReservedSSO_BreakGlassMulti_0123456789abcdef/ken@example.com"
    );
    let now = break_glass::time_util::rfc3339(time::OffsetDateTime::now_utc());
    let record = json!({"eventVersion": "1.09", "eventID": format!("{name}-{account}"), "eventTime": now,
        "awsRegion": "us-east-1", "eventSource": "iam.amazonaws.com", "eventName": name, "readOnly": false,
        "recipientAccountId": account, "userIdentity": {"type": "AssumedRole", "arn": arn, "accountId": account},
        "sourceIPAddress": "198.51.100.9", "userAgent": "aws-cli/2.15"});
    http_json(
        Method::POST,
        &format!("{}/_testbed/cloudtrail/events", s().get("MOTO_URL")),
        Some(json!({"account_id": account, "region": "us-east-1", "events": [record]})),
    )
    .await;
}

#[tokio::test]
async fn two_accounts_are_granted_together_ended_together_and_reported_once() {
    let _turn = TURN.lock().await;
    let [first, second] = both();
    assert!(!assigned(first).await && !assigned(second).await);
    let (id, reply) = submit(&both(), "V0MULTI0001", "1h").await;
    assert_eq!(reply["response_action"], "clear", "{reply}");

    wait_granted(&id).await;
    assert!(assigned(first).await, "the first account is granted");
    assert!(assigned(second).await, "and the second");
    let executions = executions_named(&aws_sdk_sfn::Client::new(&sdk().await), &id).await;
    assert_eq!(executions.len(), 1, "one execution for both accounts");
    let item = request_item(&id).await.unwrap();
    assert_eq!(item["account_id"].as_s().unwrap(), first);
    assert!(
        item["more_accounts"].as_s().unwrap().contains(second),
        "{item:?}"
    );
    // The requester's Home lists both accounts of the one request.
    let home = eventually("ken's Home", 30, || async {
        slack_requests()
            .await
            .into_iter()
            .filter(|r| r["path"] == "/api/views.publish" && r["body"]["user_id"] == ken())
            .map(|r| r["body"]["view"].to_string())
            .rfind(|v| v.contains(&id))
    })
    .await;
    assert!(
        home.contains(first) && home.contains(second),
        "Home shows both accounts: {home}"
    );

    // What the session did in each account, then End access now: both are removed.
    seed_events(first, "CreateAccessKey").await;
    seed_events(second, "CreateUser").await;
    let ended = press(s().get("RESPONDER_SLACK_USER_ID"), "end_access", &id).await;
    assert!(ended.contains("being removed now"), "{ended}");
    succeeded_and_removed(&id).await;

    // One report over both accounts: each one's events, flags across all, a section each.
    let messages = http_json(
        Method::GET,
        &format!("{}/_testbed/ses/messages", s().get("MOTO_URL")),
        None,
    )
    .await;
    let mail = messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m.to_string().contains(&id))
        .unwrap_or_else(|| panic!("no report for {id}"))
        .to_string();
    for want in [
        first,
        second,
        "CreateAccessKey",
        "CreateUser",
        "By account (2)",
        "on 2 accounts",
    ] {
        assert!(mail.contains(want), "the report lacks {want:?}: {mail}");
    }
    // One review, naming both accounts.
    let review = eventually("the review request", 30, || async {
        slack_requests()
            .await
            .into_iter()
            .filter(|r| r["path"] == "/api/chat.postMessage")
            .map(|r| r["body"].to_string())
            .find(|b| b.contains("Review this use") && b.contains(&id))
    })
    .await;
    assert!(
        review.contains("*Accounts:*") && review.contains(first) && review.contains(second),
        "{review}"
    );
    // One audit trail: each account's lease joined and released on its own.
    let details = audit_details(&id).await;
    let joined: Vec<&(String, String)> = details
        .iter()
        .filter(|(e, _)| e == "lease_joined")
        .collect();
    assert_eq!(joined.len(), 2, "{details:?}");
    let revoked = detail_of(&details, "revoked");
    assert!(
        revoked.contains(&format!("account {first}: assignment deleted"))
            && revoked.contains(&format!("account {second}: assignment deleted")),
        "{revoked}"
    );
    // The rule ends live sessions: a deny for each account, named after the request and the
    // account, lifted once the sessions have expired (before the execution finished).
    let ended = detail_of(&details, "sessions_ended");
    for account in [first, second] {
        let sid = break_glass::sessions::Deny::sid_for(&id, account);
        assert!(ended.contains(&sid), "{sid} in {ended}");
    }
    assert!(
        details.iter().any(|(e, _)| e == "sessions_deny_lifted"),
        "{details:?}"
    );
    // The audit export lists every account of the request.
    let rows: Value = serde_json::from_str(&audit_export_today("json")).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["request_id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not exported: {rows}"));
    assert_eq!(row["accounts"], format!("{first} {second}"));
}

#[tokio::test]
async fn a_grant_failure_on_one_account_still_revokes_the_other_and_is_named() {
    let _turn = TURN.lock().await;
    let [first, second] = both();
    // Each account in turn cannot be granted (a permanent error, not retried). Granted before
    // the failure, the other is revoked with it; after it, the other is never granted at all
    // (the request is over: no access is made for it).
    for (n, (failing, other)) in [(second, first), (first, second)].into_iter().enumerate() {
        inject_fault(
            json!({"operation": "CreateAccountAssignment", "times": 1000, "status": 400,
            "code": "ValidationException", "match": failing}),
        )
        .await;
        let (id, _) = submit(&both(), &format!("V0MULTIFAIL{n}"), "1h").await;
        let (status, error) = finished(&id, 120).await;
        http_json(
            Method::DELETE,
            &format!("{}/_testbed/faults", s().get("MOTO_URL")),
            None,
        )
        .await;
        assert_eq!(status, aws_sdk_sfn::types::ExecutionStatus::Failed);
        assert_eq!(error.as_deref(), Some("GrantFailed"));
        assert!(
            !assigned(first).await && !assigned(second).await,
            "nothing left"
        );
        let details = audit_details(&id).await;
        let detail = |event: &str| detail_of(&details, event);
        let failed = detail("grant_failed");
        assert!(failed.contains(&format!("account {failing}")), "{failed}");
        assert!(
            !failed.contains(&format!("account {other}")),
            "only the account that failed is named: {failed}"
        );
        let other_created = details.iter().any(|(e, d)| {
            e == "assignment_requested" && d.ends_with(&format!("in account {other}"))
        });
        let revoked = detail("revoked");
        if other == first {
            assert!(other_created, "granted before the failure: {details:?}");
            assert!(
                revoked.contains(&format!("account {other}: assignment deleted")),
                "{revoked}"
            );
        } else {
            assert!(!other_created, "never granted after it: {details:?}");
        }
        assert!(
            !details.iter().any(|(e, _)| e == "granted"),
            "never granted as a whole: {details:?}"
        );
    }
}

#[tokio::test]
async fn a_request_with_one_account_the_policy_refuses_is_refused_whole() {
    let _turn = TURN.lock().await;
    let [first, second] = both();
    let errors = |reply: &Value| reply["errors"]["account"].as_str().unwrap_or("").to_owned();
    // An account no rule of ken's names: refused, and the refusal says which.
    let (id, reply) = submit(&[first, "333333333333"], "V0MULTI0003", "1h").await;
    assert_eq!(reply["response_action"], "errors", "{reply}");
    assert!(errors(&reply).contains("333333333333"), "{reply}");
    assert!(request_item(&id).await.is_none(), "nothing recorded");
    // More accounts than the rule allows, and an account chosen twice (a crafted form).
    let (id, reply) = submit(&[first, second, "444444444444"], "V0MULTI0004", "1h").await;
    assert_eq!(reply["response_action"], "errors", "{reply}");
    assert!(request_item(&id).await.is_none());
    let (_, reply) = submit(&[first, "not-an-account"], "V0MULTI0005", "1h").await;
    assert!(errors(&reply).contains("account id"), "{reply}");
    // Alice's rules do not cover the second account: refused whole, nothing granted.
    let body = submission_of_accounts(
        s().get("EXAMPLE_SLACK_USER_ID"),
        "V0MULTI0006",
        &[first, second],
        s().get("EXAMPLE_PERMISSION_SET_ARN"),
        "1h",
    );
    let (status, reply) = post_signed(&body).await;
    assert_eq!(status, 200);
    let reply: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["response_action"], "errors", "{reply}");
    assert!(!assigned(first).await && !assigned(second).await);
}

#[tokio::test]
async fn one_account_under_the_multi_account_rule_runs_the_single_account_cycle() {
    let _turn = TURN.lock().await;
    let [first, _] = both();
    let (id, _) = submit(&[first], "V0MULTI0007", "4s").await;
    succeeded_and_removed(&id).await;
    let item = request_item(&id).await.unwrap();
    assert!(!item.contains_key("more_accounts"), "{item:?}");
    assert_eq!(
        audit_names(&id).await,
        whole_cycle_ending_sessions(),
        "the cycle of a single-account rule that ends sessions"
    );
    let details = audit_details(&id).await;
    assert!(
        details.iter().all(|(_, d)| !d.contains("in account")),
        "worded as before: {details:?}"
    );
}

#[tokio::test]
async fn the_reconciler_retires_a_dead_request_on_every_account() {
    let _turn = TURN.lock().await;
    let [first, second] = both();
    let (id, _) = submit(&both(), "V0MULTI0008", "1h").await;
    wait_granted(&id).await;
    assert!(assigned(first).await && assigned(second).await);
    // Its execution is stopped by hand: nothing of it would ever revoke either account.
    stop_execution_and_wait(&id).await;
    let summary = invoke_worker(json!({"type": "reconcile"})).await;
    assert_eq!(summary["errors"], json!([]), "{summary}");
    assert!(!assigned(first).await, "{summary}");
    assert!(!assigned(second).await, "{summary}");
    assert_eq!(status_of(&id).await, "revoked");
    let details = audit_details(&id).await;
    let released = detail_of(&details, "released");
    assert!(
        released.contains(&format!("account {first}: assignment deleted"))
            && released.contains(&format!("account {second}: assignment deleted")),
        "{released}"
    );
}

#[tokio::test]
async fn a_grant_that_outlives_its_revoke_creates_no_further_account() {
    let _turn = TURN.lock().await;
    let [first, second] = both();
    // The first account's create is slow; meanwhile the request is stopped and revoked, as
    // the state machine does after a Grant timeout.
    let who = principal("ken@example.com").await;
    inject_fault(json!({"operation": "CreateAccountAssignment", "times": 1,
                        "slow_seconds": 6, "match": who}))
    .await;
    let (id, _) = submit(&both(), "V0MULTI0009", "1h").await;
    revoke_while_creating(&id).await;
    // The slow create lands after the revoke (a late grant, the reconciler's to remove); the
    // grant goes no further: the second account is never granted.
    eventually("the late assignment", 30, || async {
        assigned(first).await.then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(
        !assigned(second).await,
        "no access made for a revoked request"
    );
    let details = audit_details(&id).await;
    assert!(
        !details
            .iter()
            .any(|(_, d)| d.contains(&format!("in account {second}"))),
        "{details:?}"
    );
    let summary = invoke_worker(json!({"type": "reconcile"})).await;
    assert_eq!(summary["errors"], json!([]), "{summary}");
    assert!(
        !assigned(first).await,
        "the late grant is removed: {summary}"
    );
}
