//! Fault injection: every AWS call of the cycle fails in turn (throttling, 5xx, a hung call,
//! ConflictException, provisioning IN_PROGRESS and FAILED), injected by the test bed in front
//! of moto. For every case: no access is left behind (or the alarm fired), and the audit
//! trail is complete. The cases run one after another so that each fault hits its own cycle;
//! the permanent revoke failure runs alongside them (it takes minutes of retries).

mod common;

use aws_sdk_sfn::types::ExecutionStatus;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};

fn s() -> &'static Stack {
    stack_with("2s")
}

async fn assigned(principal: &str) -> bool {
    assignment_count(principal, s().get("EXAMPLE_PERMISSION_SET_ARN")).await > 0
}

async fn run_cycle(
    user: &str,
    message_ts: &str,
    secs: u64,
) -> (String, ExecutionStatus, Option<String>) {
    let body = seed_click(user, message_ts, s().get("EXAMPLE_PERMISSION_SET_ARN"));
    let id = request_id_of(&body);
    let (status, reply) = post_signed(&body).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("Glass broken"), "{reply}");
    let status = finished(&id, secs).await;
    (id, status.0, status.1)
}

#[tokio::test]
async fn every_call_of_the_cycle_fails_in_turn_and_access_is_always_revoked() {
    let alice = principal(s().get("EXAMPLE_SSO_USER_NAME")).await;
    let bob = principal(s().get("SECOND_SSO_USER_NAME")).await;

    // The permanent failure: Bob's revoke never succeeds. It runs while the other cases do.
    inject_fault(
        json!({"operation": "DeleteAccountAssignment", "times": 10000, "status": 500,
                  "code": "InternalServerException", "match": bob}),
    )
    .await;
    let permanent = tokio::spawn(async {
        run_cycle(s().get("SECOND_SLACK_USER_ID"), "1700000300.000100", 900).await
    });

    // Bob's grant must be done before the cases start, so that it takes none of their faults.
    let bob_click = seed_click(
        s().get("SECOND_SLACK_USER_ID"),
        "1700000300.000100",
        s().get("EXAMPLE_PERMISSION_SET_ARN"),
    );
    let bob_id = request_id_of(&bob_click);
    eventually("Bob's grant", 60, || async {
        request_item(&bob_id)
            .await
            .filter(|i| i.contains_key("granted_at"))
            .map(drop)
    })
    .await;

    // Several accounts: the second account's revoke never succeeds. The first is revoked all
    // the same, before the cases start (so that this request takes none of their faults).
    let ken = s().get("MULTI_ACCOUNT_SLACK_USER_ID");
    let ken_principal = principal("ken@example.com").await;
    let multi_ps = s().get("MULTI_ACCOUNT_PERMISSION_SET_ARN");
    let (first, second) = (s().get("EXAMPLE_ACCOUNT_ID"), s().get("SECOND_ACCOUNT_ID"));
    inject_fault(
        json!({"operation": "DeleteAccountAssignment", "times": 10000, "status": 500,
                  "code": "InternalServerException", "match": second}),
    )
    .await;
    let (status, reply) = post_signed(&submission_of_accounts(
        ken,
        "V0FAULTMULTI",
        &[first, second],
        multi_ps,
        "2s",
    ))
    .await;
    assert_eq!(status, 200, "{reply}");
    let multi_id = modal_request_id(ken, "V0FAULTMULTI");
    eventually(
        "the first account revoked while the second fails",
        90,
        || async {
            let partial = audit_names(&multi_id)
                .await
                .iter()
                .any(|e| e == "revoke_partial");
            (partial && !assigned_on(&ken_principal, first, multi_ps).await).then_some(())
        },
    )
    .await;
    assert!(assigned_on(&ken_principal, second, multi_ps).await);

    let in_progress =
        json!({"Status": "IN_PROGRESS", "RequestId": "00000000-0000-4000-8000-000000000000"});
    let cases: Vec<(&str, Value, ExecutionStatus)> = vec![
        (
            "ListAccountAssignments 5xx",
            json!({"operation": "ListAccountAssignments", "times": 4, "status": 500, "code": "InternalServerException"}),
            ExecutionStatus::Succeeded,
        ),
        (
            "CreateAccountAssignment throttled",
            json!({"operation": "CreateAccountAssignment", "times": 4, "status": 400, "code": "ThrottlingException", "match": alice}),
            ExecutionStatus::Succeeded,
        ),
        (
            "CreateAccountAssignment conflict",
            json!({"operation": "CreateAccountAssignment", "times": 4, "status": 409, "code": "ConflictException", "match": alice}),
            ExecutionStatus::Succeeded,
        ),
        (
            "CreateAccountAssignment hangs",
            json!({"operation": "CreateAccountAssignment", "times": 1, "delay_seconds": 4, "match": alice}),
            ExecutionStatus::Succeeded,
        ),
        (
            "creation IN_PROGRESS",
            json!({"operation": "DescribeAccountAssignmentCreationStatus", "times": 3, "body": {"AccountAssignmentCreationStatus": in_progress}}),
            ExecutionStatus::Succeeded,
        ),
        (
            "creation FAILED",
            json!({"operation": "DescribeAccountAssignmentCreationStatus", "times": 1, "body": {"AccountAssignmentCreationStatus": {"Status": "FAILED", "FailureReason": "injected: permission set not provisioned", "RequestId": "x"}}}),
            ExecutionStatus::Failed,
        ),
        (
            "DynamoDB throttled",
            json!({"operation": "TransactWriteItems", "times": 4, "status": 400, "code": "ProvisionedThroughputExceededException", "match": "granting"}),
            ExecutionStatus::Succeeded,
        ),
        (
            "DeleteAccountAssignment 5xx",
            json!({"operation": "DeleteAccountAssignment", "times": 4, "status": 500, "code": "InternalServerException", "match": alice}),
            ExecutionStatus::Succeeded,
        ),
        (
            "deletion IN_PROGRESS",
            json!({"operation": "DescribeAccountAssignmentDeletionStatus", "times": 3, "body": {"AccountAssignmentDeletionStatus": in_progress}}),
            ExecutionStatus::Succeeded,
        ),
        (
            "LookupEvents throttled",
            json!({"operation": "LookupEvents", "times": 4, "status": 400, "code": "ThrottlingException"}),
            ExecutionStatus::Succeeded,
        ),
        (
            "SendRawEmail 5xx",
            json!({"operation": "SendRawEmail", "times": 4, "status": 500, "code": "InternalFailure"}),
            ExecutionStatus::Succeeded,
        ),
    ];
    let mut outcomes = Vec::new();
    for (i, (name, fault, expected)) in cases.into_iter().enumerate() {
        let operation = fault["operation"].as_str().unwrap().to_owned();
        let before = fault_hits().await["hits"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["operation"] == operation)
            .count();
        inject_fault(fault).await;
        let (id, status, error) = run_cycle(
            s().get("EXAMPLE_SLACK_USER_ID"),
            &format!("1700000301.{i:06}"),
            300,
        )
        .await;
        let hits = fault_hits().await["hits"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["operation"] == operation)
            .count();
        assert!(hits > before, "{name}: the fault was never hit");
        assert_eq!(status, expected, "{name}: execution {status:?} ({error:?})");
        assert!(!assigned(&alice).await, "{name}: access left behind");
        let mut trail = audit_names(&id).await;
        // Each retried creation records its own attempt ("creating"): compare one of them.
        trail.dedup();
        if expected == ExecutionStatus::Succeeded {
            assert_eq!(trail, WHOLE_CYCLE, "{name}");
        } else {
            assert_eq!(error.as_deref(), Some("GrantFailed"), "{name}");
            assert_eq!(
                trail,
                [
                    "requested",
                    "granting",
                    "lease_joined",
                    "creating",
                    "assignment_requested",
                    "revoked",
                    "announced"
                ],
                "{name}"
            );
        }
        outcomes.push(format!(
            "{name}: {status:?}, {} injected, no access left, audit {}",
            hits - before,
            trail.join(" → ")
        ));
    }

    let (id, status, error) = permanent.await.unwrap();
    assert_eq!(status, ExecutionStatus::Failed);
    assert_eq!(error.as_deref(), Some("RevokeFailed"));
    let trail = audit_names(&id).await;
    assert_eq!(
        trail.last().map(String::as_str),
        Some("revoke_failed"),
        "{trail:?}"
    );
    assert!(
        assigned(&bob).await,
        "the access revoke could not remove is still there: the alarm is the safety net"
    );
    // The alarm: the worker's `revoke failed` error line (a CloudWatch metric filter in AWS),
    // and the requester is told.
    let logs = binary_logs();
    assert!(
        logs.lines().any(|l| l.contains("\"level\":\"ERROR\"")
            && l.contains("\"message\":\"revoke failed\"")
            && l.contains(&id)),
        "no revoke-failed alarm line in the worker's log"
    );
    let slack = http_json(
        Method::GET,
        &format!("{}/_testbed/requests", s().get("SLACK_FAKE_URL")),
        None,
    )
    .await;
    assert!(
        slack.to_string().contains("could *not* be revoked"),
        "Slack was not told"
    );
    outcomes.push(format!(
        "DeleteAccountAssignment fails for good: {status:?} RevokeFailed, alarm logged, Slack told"
    ));

    // The request over two accounts: the alarm names the account whose revoke failed; the
    // other was revoked long before.
    let (status, error) = finished(&multi_id, 900).await;
    assert_eq!(status, ExecutionStatus::Failed);
    assert_eq!(error.as_deref(), Some("RevokeFailed"));
    let details = audit_details(&multi_id).await;
    let (event, detail) = details.last().unwrap();
    assert_eq!(event, "revoke_failed", "{details:?}");
    assert!(
        detail.contains(&format!("in account(s) {second}")),
        "the alarm names the account: {detail}"
    );
    assert!(!assigned_on(&ken_principal, first, multi_ps).await);
    assert!(assigned_on(&ken_principal, second, multi_ps).await);
    let logs = binary_logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("\"message\":\"revoke failed\"")
                && l.contains(&multi_id)
                && l.contains(&format!("\"assigned\":\"{second}\""))),
        "no revoke-failed alarm line naming the account"
    );
    outcomes.push(format!(
        "DeleteAccountAssignment fails for good on one of two accounts: the other revoked, {status:?} RevokeFailed naming {second}"
    ));

    // Clean up by hand, as an operator would: the fault is lifted and revoke runs again.
    http_json(
        Method::DELETE,
        &format!("{}/_testbed/faults", s().get("MOTO_URL")),
        None,
    )
    .await;
    invoke_worker(json!({"type": "revoke", "request_id": id})).await;
    assert!(!assigned(&bob).await);
    invoke_worker(json!({"type": "revoke", "request_id": multi_id})).await;
    assert!(!assigned_on(&ken_principal, second, multi_ps).await);
    println!("fault injection outcomes:\n  {}", outcomes.join("\n  "));
}
