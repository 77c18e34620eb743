//! The safety net on the local stack: the reconciler (invoked through the Lambda Invoke API,
//! as EventBridge or an operator would) and ending live sessions on revoke. Leases last an
//! hour here, so nothing ends by itself while a test looks. The reconciler looks at the
//! whole stack, so these tests take turns. Its sweep of the policy's pairs is split in runs
//! of two pairs here; the history it must never read is seeded straight into the table.

mod common;

use common::*;
use serde_json::{Value, json};

/// A sweep lists at most two of the policy's pairs a run here, so that a whole sweep takes
/// several runs (the policy names more than twice that).
fn s() -> &'static Stack {
    start_with_env("1h", 3, &[], &[("RECONCILE_PAIRS_PER_RUN", "2")])
}

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One reconcile run.
async fn reconcile_once() -> Value {
    let summary = invoke_worker(json!({"type": "reconcile"})).await;
    assert!(summary["assignments"].is_array(), "{summary}");
    summary
}

/// Reconcile runs until one whole sweep of the policy's pairs began and ended among them:
/// their findings, errors, lifted denies and counts together.
async fn reconcile() -> Value {
    let mut merged = json!({"assignments": [], "errors": [], "lifted_session_denies": [],
                            "counts": {}, "runs": 0});
    let mut fresh = false;
    for _ in 0..20 {
        let run = reconcile_once().await;
        for key in ["assignments", "errors", "lifted_session_denies"] {
            let more = run[key].as_array().unwrap().clone();
            merged[key].as_array_mut().unwrap().extend(more);
        }
        for (count, n) in run["counts"].as_object().unwrap() {
            let sum = merged["counts"][count].as_u64().unwrap_or(0) + n.as_u64().unwrap();
            merged["counts"][count] = json!(sum);
        }
        merged["runs"] = json!(merged["runs"].as_u64().unwrap() + 1);
        fresh |= run["sweep"]["after"].is_null();
        if fresh && run["sweep"]["complete"] == true {
            return merged;
        }
    }
    panic!("no whole sweep in 20 runs: {merged}");
}

/// The summary's finding for `principal` on `ps`, if any.
fn finding<'a>(summary: &'a Value, principal: &str, ps: &str) -> Option<&'a Value> {
    summary["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["principal_id"] == principal && f["permission_set_arn"] == ps)
}

async fn sso() -> aws_sdk_ssoadmin::Client {
    aws_sdk_ssoadmin::Client::new(&sdk().await)
}

/// Standing access: an assignment made outside break glass.
async fn assign(principal: &str, ps: &str) {
    sso()
        .await
        .create_account_assignment()
        .instance_arn(s().get("SSO_INSTANCE_ARN"))
        .target_id(s().get("EXAMPLE_ACCOUNT_ID"))
        .target_type(aws_sdk_ssoadmin::types::TargetType::AwsAccount)
        .permission_set_arn(ps)
        .principal_type(aws_sdk_ssoadmin::types::PrincipalType::User)
        .principal_id(principal)
        .send()
        .await
        .unwrap();
}

async fn inline_policy(ps: &str) -> Option<Value> {
    let out = sso()
        .await
        .get_inline_policy_for_permission_set()
        .instance_arn(s().get("SSO_INSTANCE_ARN"))
        .permission_set_arn(ps)
        .send()
        .await
        .unwrap();
    out.inline_policy
        .filter(|p| !p.is_empty())
        .map(|p| serde_json::from_str(&p).unwrap())
}

fn sids(policy: &Option<Value>) -> Vec<String> {
    policy
        .as_ref()
        .and_then(|p| p["Statement"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|st| st["Sid"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The done-when of the issue: a grant whose execution is stopped by hand is revoked by the
/// reconciler, another user's standing assignment to the same permission set is kept and
/// named, and a second run changes nothing.
#[tokio::test]
async fn a_stopped_execution_is_revoked_and_standing_access_is_kept() {
    let _turn = TURN.lock().await;
    let ps = s().get("EXAMPLE_PERMISSION_SET_ARN");
    let alice = principal(s().get("EXAMPLE_SSO_USER_NAME")).await;
    let bob = principal(s().get("SECOND_SSO_USER_NAME")).await;
    assign(&bob, ps).await;

    let body = seed_click(s().get("EXAMPLE_SLACK_USER_ID"), "1800000100.000100", ps);
    let id = request_id_of(&body);
    assert_eq!(post_signed(&body).await.0, 200);
    wait_granted(&id).await;
    assert_eq!(assignment_count(&alice, ps).await, 1);

    // The on-call engineer's execution is stopped by hand: nothing would ever revoke it.
    stop_execution_and_wait(&id).await;
    assert_eq!(status_of(&id).await, "granted");

    let summary = reconcile().await;
    let a = finding(&summary, &alice, ps).expect("alice's assignment is named");
    assert_eq!(a["action"], "revoked", "{a}");
    assert_eq!(a["break_glass"], true);
    assert_eq!(a["user"], s().get("EXAMPLE_SSO_USER_NAME"));
    assert!(
        a["why"].as_str().unwrap().contains("execution was stopped"),
        "{a}"
    );
    assert_eq!(a["requests"], json!([id]));
    let b = finding(&summary, &bob, ps).expect("bob's standing assignment is named");
    assert_eq!(b["action"], "kept", "{b}");
    assert_eq!(b["break_glass"], false);
    assert_eq!(b["user"], s().get("SECOND_SSO_USER_NAME"));
    assert!(
        b["why"].as_str().unwrap().contains("standing access"),
        "{b}"
    );
    assert_eq!(summary["errors"], json!([]));

    assert_eq!(assignment_count(&alice, ps).await, 0, "the orphan is gone");
    assert_eq!(assignment_count(&bob, ps).await, 1, "standing access stays");
    assert_eq!(status_of(&id).await, "revoked");
    let trail = audit_events(&id).await;
    let tail: Vec<(&str, &str)> = trail[trail.len() - 2..]
        .iter()
        .map(|(e, a)| (e.as_str(), a.as_str()))
        .collect();
    assert_eq!(
        tail,
        [("reconciled", "reconciler"), ("released", "reconciler")]
    );
    // The request says so too (the weekly digest counts it).
    assert!(
        request_item(&id)
            .await
            .unwrap()
            .contains_key("reconciled_at"),
        "marked as taken away by the reconciler"
    );

    // Slack heard it: the request's thread and the reconcile channel.
    let posts = slack_requests().await;
    let said = |channel: &str, what: &str| {
        posts.iter().any(|r| {
            r["path"] == "/api/chat.postMessage"
                && r["body"]["channel"] == channel
                && r["body"]["text"].as_str().is_some_and(|t| t.contains(what))
        })
    };
    assert!(said(s().get("NOTIFY_CHANNEL"), "revoked by the reconciler"));
    assert!(said(s().get("RECONCILE_CHANNEL"), "alice@example.com"));

    // Again: nothing left to do, nothing changes.
    let again = reconcile().await;
    for count in ["revoked", "removed", "cleared", "failed"] {
        assert_eq!(again["counts"][count], 0, "{count}: {again}");
    }
    assert!(finding(&again, &alice, ps).is_none(), "{again}");
    assert_eq!(finding(&again, &bob, ps).unwrap()["action"], "kept");
    assert_eq!(audit_events(&id).await.len(), trail.len());
    assert_eq!(assignment_count(&bob, ps).await, 1);
}

/// The sre-readonly rule says `standing_access = "remove"`: an assignment of ReadOnly that
/// break glass never made is deleted, and named.
#[tokio::test]
async fn standing_access_is_removed_where_the_policy_says_so() {
    let _turn = TURN.lock().await;
    let ps = s().get("READONLY_PERMISSION_SET_ARN");
    let carol = principal(s().get("EMAIL_SSO_USER_NAME")).await;
    assign(&carol, ps).await;

    let summary = reconcile().await;
    let c = finding(&summary, &carol, ps).expect("carol's assignment is named");
    assert_eq!(c["action"], "removed", "{c}");
    assert!(c["why"].as_str().unwrap().contains("sre-readonly"), "{c}");
    assert_eq!(assignment_count(&carol, ps).await, 0);

    let again = reconcile().await;
    assert!(finding(&again, &carol, ps).is_none(), "{again}");
    assert_eq!(again["counts"]["removed"], 0);
}

/// Dave's rule ends live sessions: End access now puts a deny on exactly his sessions
/// issued before then, next to the operator's own statement, and the state machine lifts it
/// once they have expired (sessions last 5 s here).
#[tokio::test]
async fn ending_access_denies_exactly_that_users_sessions_until_they_expire() {
    let _turn = TURN.lock().await;
    let ps = s().get("READONLY_PERMISSION_SET_ARN");
    let operator = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "OperatorReadsLogs", "Effect": "Allow", "Action": "logs:Get*", "Resource": "*"}]});
    sso()
        .await
        .put_inline_policy_to_permission_set()
        .instance_arn(s().get("SSO_INSTANCE_ARN"))
        .permission_set_arn(ps)
        .inline_policy(operator.to_string())
        .send()
        .await
        .unwrap();
    let dave_slack = s().get("GROUP_SLACK_USER_ID");
    let dave = principal(s().get("GROUP_SSO_USER_NAME")).await;
    let body = submission(
        dave_slack,
        "V-sessions-1",
        s().get("EXAMPLE_ACCOUNT_ID"),
        "ReadOnly",
        "15m",
        Some("incident 77"),
    );
    assert_eq!(post_signed(&body).await.0, 200);
    let id = break_glass::domain::RequestId::derive(&[
        s().get("SLACK_TEAM_ID"),
        dave_slack,
        "modal",
        "V-sessions-1",
    ])
    .to_string();
    wait_granted(&id).await;
    assert_eq!(sids(&inline_policy(ps).await), ["OperatorReadsLogs"]);

    let end = json!({
        "type": "block_actions", "team": {"id": s().get("SLACK_TEAM_ID")}, "user": {"id": dave_slack},
        "api_app_id": s().get("SLACK_API_APP_ID"),
        "actions": [{"action_id": "end_access", "block_id": "lease", "value": id, "type": "button", "action_ts": "1.2"}]
    });
    let body = serde_urlencoded::to_string([("payload", end.to_string())]).unwrap();
    // Provisioning the deny fails twice: Revoke's retries finish the release they started
    // (the lease stays "releasing" until the deny is in place).
    inject_fault(
        json!({"operation": "ProvisionPermissionSet", "times": 2, "status": 500,
                        "code": "InternalServerException", "match": ps}),
    )
    .await;
    let pressed = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    assert_eq!(post_signed(body.as_bytes()).await.0, 200);

    let denied = eventually("the deny on dave's sessions", 60, || async {
        let policy = inline_policy(ps).await?;
        let sid = break_glass::sessions::Deny::sid_for(&id, s().get("EXAMPLE_ACCOUNT_ID"));
        sids(&Some(policy.clone())).contains(&sid).then_some(policy)
    })
    .await;
    let statements = denied["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2, "{denied}");
    assert_eq!(statements[0]["Sid"], "OperatorReadsLogs", "kept as it was");
    let deny = &statements[1];
    assert_eq!(deny["Effect"], "Deny");
    assert_eq!(deny["Action"], "*");
    let equals = &deny["Condition"]["StringEquals"];
    assert_eq!(
        equals,
        &json!({"identitystore:userId": dave, "aws:PrincipalAccount": s().get("EXAMPLE_ACCOUNT_ID")}),
        "exactly that user, in that account"
    );
    let before = deny["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
        .as_str()
        .unwrap()
        .to_owned();
    // The deny is in place before the request is marked revoked (it is part of the release).
    let revoked_at = eventually("the revoke", 30, || async {
        request_item(&id)
            .await?
            .get("revoked_at")?
            .as_s()
            .ok()
            .cloned()
    })
    .await;
    let revoked =
        time::OffsetDateTime::parse(&revoked_at, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let before =
        time::OffsetDateTime::parse(&before, &time::format_description::well_known::Rfc3339)
            .unwrap();
    assert!(
        before >= pressed && before <= revoked + time::Duration::seconds(6),
        "sessions issued up to the deny (plus 5 s of clock skew) are denied: {before} vs pressed {pressed}, revoked {revoked}"
    );
    assert_eq!(assignment_count(&dave, ps).await, 0);

    // Once the sessions (5 s) and the margin (1 s) have passed, the execution lifts it.
    let (status, error) = finished(&id, 90).await;
    assert_eq!(
        status,
        aws_sdk_sfn::types::ExecutionStatus::Succeeded,
        "{error:?}"
    );
    // This request's deny is gone and the permission set's own statements are untouched
    // (another test's request may hold its own deny on the same permission set meanwhile).
    let left = sids(&inline_policy(ps).await);
    assert!(
        !left.contains(&break_glass::sessions::Deny::sid_for(
            &id,
            s().get("EXAMPLE_ACCOUNT_ID")
        )),
        "{left:?} {:?}; states {:?}",
        audit_details(&id).await,
        states_entered(&id).await
    );
    assert_eq!(left[0], "OperatorReadsLogs", "{left:?}");
    let names = audit_names(&id).await;
    for event in [
        "revoked",
        "sessions_ended",
        "reported",
        "sessions_deny_lifted",
    ] {
        assert!(names.iter().any(|n| n == event), "{event} in {names:?}");
    }
    let trail = audit_details(&id).await;
    assert!(
        trail.iter().any(
            |(e, d)| e == "revoked" && d.contains("assignment deleted; sessions issued before")
        ),
        "{trail:?}"
    );
    let faults = fault_hits().await;
    let met = faults["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["operation"] == "ProvisionPermissionSet")
        .count();
    assert_eq!(met, 2, "both injected failures were met: {faults}");

    // A repeated lift changes nothing.
    let again = invoke_worker(json!({"type": "lift_sessions", "request_id": id})).await;
    assert_eq!(again["lifted"], json!([]));
    assert_eq!(audit_names(&id).await, names);
    assert_eq!(sids(&inline_policy(ps).await), ["OperatorReadsLogs"]);
}

/// A granted request whose rule ends live sessions, as Grant leaves it (with its lease).
fn revoked_request(
    n: usize,
    user: &str,
    principal: &str,
    ps: &str,
) -> break_glass::domain::request::RequestRecord {
    use break_glass::domain::request::{RequestRecord, Status};
    use break_glass::domain::{AccountId, Duration, PermissionSetArn, RequestId};
    let now = time::OffsetDateTime::now_utc();
    RequestRecord {
        id: RequestId::derive(&[
            "concurrent-deny",
            &n.to_string(),
            &now.unix_timestamp_nanos().to_string(),
        ]),
        status: Status::Granted,
        version: 1,
        team_id: s().get("SLACK_TEAM_ID").into(),
        slack_user_id: "U0NOBODY01".into(),
        sso_user_name: user.into(),
        account_id: AccountId::parse(s().get("EXAMPLE_ACCOUNT_ID")).unwrap(),
        more_accounts: Vec::new(),
        permission_set_arn: PermissionSetArn::parse(ps).unwrap(),
        duration: Duration::from_secs(900),
        rule: "sre-readonly".into(),
        reason: Some("race".into()),
        max_duration: Duration::from_secs(3600),
        channel_id: None,
        response_url: None,
        notify_channel: None,
        thread_ts: None,
        permission_set_name: Some("ReadOnly".into()),
        requested_at: now,
        principal_id: Some(principal.into()),
        preexisting: false,
        shared: false,
        ended_by: None,
        ended_at: None,
        hold_token: None,
        clicks: Vec::new(),
        creation_request_id: None,
        granted_at: Some(now),
        expires_at: Some(now),
        revoked_at: None,
        reported_at: None,
        end_sessions: true,
        sessions_denied_until: None,
        sessions_lifted_at: None,
        revoke_failed_at: None,
        after_end_checked_at: None,
        reconciled_at: None,
        digest: None,
        review: Default::default(),
        approval: Default::default(),
        incident_id: None,
        incident_url: None,
    }
}

/// Revokes on one permission set that overlap each add their deny to the same inline
/// policy: none is lost. The first one's write is held back (a slow call, injected by the
/// test bed) until the others have written theirs, so it lands last with a stale rendering:
/// it must notice and render again. Once they have expired, the reconciler lifts them all.
#[tokio::test]
async fn concurrent_denies_on_one_permission_set_are_never_lost() {
    let _turn = TURN.lock().await;
    let ps = s().get("READONLY_PERMISSION_SET_ARN");
    let store = break_glass::aws::store::Store::new(
        aws_sdk_dynamodb::Client::new(&sdk().await),
        s().get("TABLE_NAME"),
    );
    let users = [
        s().get("EXAMPLE_SSO_USER_NAME"),
        s().get("SECOND_SSO_USER_NAME"),
        s().get("EMAIL_SSO_USER_NAME"),
        s().get("GROUP_SSO_USER_NAME"),
    ];
    let mut ids = Vec::new();
    for (n, user) in users.iter().enumerate() {
        let rec = revoked_request(n, user, &principal(user).await, ps);
        let audit = break_glass::domain::request::Audit {
            event: "requested",
            actor: "test",
            detail: "a granted request whose rule ends live sessions".into(),
        };
        store.create(&rec, audit, None).await.unwrap();
        let lease = break_glass::domain::lease::Lease {
            key: break_glass::domain::lease::Lease::key(
                rec.principal_id.as_deref().unwrap(),
                &rec.account_id,
                &rec.permission_set_arn,
            ),
            holders: vec![rec.id.to_string()],
            standing: false,
            releasing: false,
            released_at: None,
            end_sessions_for: None,
            provisioned: true,
            version: 1,
        };
        assert!(store.put_lease(&lease, None).await.unwrap());
        ids.push(rec.id.to_string());
    }
    let before = sids(&inline_policy(ps).await);
    inject_fault(
        json!({"operation": "PutInlinePolicyToPermissionSet", "times": 1, "slow_seconds": 3}),
    )
    .await;
    let first = tokio::spawn(invoke_worker(
        json!({"type": "revoke", "request_id": ids[0]}),
    ));
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let others = ids[1..]
        .iter()
        .map(|id| invoke_worker(json!({"type": "revoke", "request_id": id})));
    let mut results = futures_util::future::join_all(others).await;
    results.push(first.await.unwrap());
    for r in &results {
        assert!(r["sessions_denied_until"].is_string(), "{r}");
    }
    let after = sids(&inline_policy(ps).await);
    let ours: Vec<&String> = after.iter().filter(|s| !before.contains(s)).collect();
    assert_eq!(ours.len(), ids.len(), "every deny is there: {after:?}");
    for id in &ids {
        let sid = break_glass::sessions::Deny::sid_for(id, s().get("EXAMPLE_ACCOUNT_ID"));
        assert!(after.contains(&sid), "{sid} in {after:?}");
    }

    // Once the sessions (5 s) and the margin (1 s) have passed, a reconcile lifts every one.
    let until = results
        .iter()
        .map(|r| {
            time::OffsetDateTime::parse(
                r["sessions_denied_until"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
        })
        .max()
        .unwrap();
    let wait = until - time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
    tokio::time::sleep(wait.try_into().unwrap_or_default()).await;
    let summary = reconcile().await;
    let lifted = summary["lifted_session_denies"].as_array().unwrap();
    for id in &ids {
        assert!(
            lifted.iter().any(|l| l["request_id"] == id.as_str()),
            "{id} lifted: {summary}"
        );
    }
    assert_eq!(sids(&inline_policy(ps).await), before);
}

/// Two reconciles at once over the same orphan (two worker instances): the fenced writes let
/// exactly one of them revoke it; the other changes nothing, and the audit trail has one
/// `reconciled` entry.
#[tokio::test]
async fn two_reconciles_at_once_revoke_once() {
    let _turn = TURN.lock().await;
    let ps = s().get("EXAMPLE_PERMISSION_SET_ARN");
    let carol = principal(s().get("EMAIL_SSO_USER_NAME")).await;
    let body = seed_click(s().get("EMAIL_SLACK_USER_ID"), "1800000200.000200", ps);
    let id = request_id_of(&body);
    assert_eq!(post_signed(&body).await.0, 200);
    wait_granted(&id).await;
    stop_execution_and_wait(&id).await;

    let (a, b) = tokio::join!(reconcile_once(), reconcile_once());
    let actions: Vec<String> = [&a, &b]
        .iter()
        .filter_map(|summary| finding(summary, &carol, ps))
        .map(|f| f["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "revoked").count(),
        1,
        "exactly one run revoked it: {actions:?}\n{a}\n{b}"
    );
    assert_eq!(assignment_count(&carol, ps).await, 0);
    assert_eq!(status_of(&id).await, "revoked");
    let reconciled = audit_names(&id)
        .await
        .into_iter()
        .filter(|e| e == "reconciled")
        .count();
    assert_eq!(reconciled, 1);
    let again = reconcile().await;
    assert!(finding(&again, &carol, ps).is_none(), "{again}");
}

/// Years of history in the table: finished requests with their audit rows, 2 KB each, so
/// that a Scan would have to read many 1 MB pages.
async fn seed_history(requests: usize) {
    use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
    let db = aws_sdk_dynamodb::Client::new(&sdk().await);
    let s_ = |v: &str| AttributeValue::S(v.to_owned());
    let padding = "x".repeat(2000);
    let mut writes = Vec::new();
    for i in 0..requests {
        let id = format!("bg-history{i:08}");
        let request = [
            ("pk", s_(&id)),
            ("sk", s_("request")),
            ("status", s_("reported")),
            ("reason", s_(&padding)),
            ("requested_at", s_("2024-03-01T10:00:00Z")),
            ("day", s_("2024-03-01")),
        ];
        let audit = [
            ("pk", s_(&id)),
            ("sk", s_("audit#00000001")),
            ("event", s_("requested")),
            ("detail", s_(&padding)),
        ];
        for item in [&request[..], &audit[..]] {
            let item = item.iter().map(|(k, v)| ((*k).to_owned(), v.clone()));
            writes.push(
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item.collect()))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            );
        }
    }
    for batch in writes.chunks(25) {
        db.batch_write_item()
            .request_items(s().get("TABLE_NAME"), batch.to_vec())
            .send()
            .await
            .unwrap();
    }
}

/// What the emulator's DynamoDB read counter says: calls and items returned, by operation
/// and index.
async fn reads() -> Value {
    let url = format!("{}/_testbed/dynamodb/reads", s().get("MOTO_URL"));
    http_json(reqwest::Method::GET, &url, None).await
}

/// An orphan among thousands of finished requests and their audit rows (some 12 MB, a
/// dozen 1 MB Scan pages) is found through the live index: no Scan, and the reconciler reads
/// what break glass holds now, never the history.
#[tokio::test]
async fn an_orphan_is_found_among_years_of_history_without_a_scan() {
    let _turn = TURN.lock().await;
    seed_history(3000).await;
    let ps = s().get("EXAMPLE_PERMISSION_SET_ARN");
    let alice = principal(s().get("EXAMPLE_SSO_USER_NAME")).await;
    let body = seed_click(s().get("EXAMPLE_SLACK_USER_ID"), "1800000300.000100", ps);
    let id = request_id_of(&body);
    assert_eq!(post_signed(&body).await.0, 200);
    wait_granted(&id).await;
    stop_execution_and_wait(&id).await;

    let url = format!("{}/_testbed/dynamodb/reads", s().get("MOTO_URL"));
    http_json(reqwest::Method::DELETE, &url, None).await;
    let summary = reconcile_once().await;
    let read = reads().await;

    let f = finding(&summary, &alice, ps).expect("the orphan is found");
    assert_eq!(f["action"], "revoked", "{f}");
    assert_eq!(assignment_count(&alice, ps).await, 0);
    assert_eq!(read["calls"]["Scan"].as_u64().unwrap_or(0), 0, "{read}");
    assert!(
        read["items_by_index"]["live"].as_u64().unwrap_or(0) >= 1,
        "the live index holds the orphan's lease: {read}"
    );
    let items: u64 = read["items"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert!(
        items < 200,
        "the reconciler read {items} items for a handful of live ones and 6,000 of history: {read}"
    );
    assert_eq!(
        read["items_by_index"]["by_day"].as_u64().unwrap_or(0),
        0,
        "no history by day either: {read}"
    );
}

/// A sweep of the policy's pairs split across runs (two pairs a run here) finishes, lists
/// each pair once, and acts on each finding once: standing access the policy says to remove
/// is removed by one run of the sweep, and the next sweep finds nothing.
#[tokio::test]
async fn a_sweep_split_across_runs_finishes_and_changes_nothing_twice() {
    let _turn = TURN.lock().await;
    let ps = s().get("READONLY_PERMISSION_SET_ARN");
    let bob = principal(s().get("SECOND_SSO_USER_NAME")).await;
    // Finish a sweep a test before may have left half-way: the next run starts afresh.
    let mut run = reconcile_once().await;
    while run["sweep"]["complete"] != true {
        run = reconcile_once().await;
    }
    assign(&bob, ps).await;

    let mut runs = Vec::new();
    loop {
        let run = reconcile_once().await;
        let complete = run["sweep"]["complete"] == true;
        runs.push(run);
        assert!(runs.len() <= 20, "the sweep never finishes");
        if complete {
            break;
        }
    }
    let total = runs[0]["sweep"]["pairs_total"].as_u64().unwrap() as usize;
    assert!(runs.len() >= 2, "a split sweep: {total} pairs, two a run");
    assert_eq!(runs.len(), total.div_ceil(2));
    let mut listed: Vec<String> = runs
        .iter()
        .flat_map(|r| r["pairs"].as_array().unwrap().clone())
        .map(|p| format!("{}#{}", p["account_id"], p["permission_set_arn"]))
        .collect();
    assert!(
        runs.iter()
            .all(|r| r["pairs"].as_array().unwrap().len() <= 2)
    );
    let count = listed.len();
    listed.sort();
    listed.dedup();
    assert_eq!((count, listed.len()), (total, total), "every pair once");
    let removed: Vec<&Value> = runs.iter().filter_map(|r| finding(r, &bob, ps)).collect();
    assert_eq!(
        removed.len(),
        1,
        "one run of the sweep looked at bob's: {removed:?}"
    );
    assert_eq!(removed[0]["action"], "removed", "{}", removed[0]);
    assert_eq!(assignment_count(&bob, ps).await, 0);
    for r in &runs {
        assert_eq!(r["errors"], json!([]), "{r}");
    }

    let again = reconcile().await;
    assert!(finding(&again, &bob, ps).is_none(), "{again}");
    assert_eq!(again["counts"]["removed"], 0, "{again}");
}

/// Identity Center may refuse to list a user across the organization (it answers that in
/// the management account): the reconciler then lists the user's held pairs one by one, and
/// the orphan is revoked all the same.
#[tokio::test]
async fn an_orphan_is_revoked_when_listing_a_user_across_the_organization_is_refused() {
    let _turn = TURN.lock().await;
    let ps = s().get("EXAMPLE_PERMISSION_SET_ARN");
    let (slack, sso_name) = spare_user(5);
    let who = principal(&sso_name).await;
    let body = seed_click(&slack, "1800000400.000100", ps);
    let id = request_id_of(&body);
    assert_eq!(post_signed(&body).await.0, 200);
    wait_granted(&id).await;
    stop_execution_and_wait(&id).await;
    inject_fault(
        json!({"operation": "ListAccountAssignmentsForPrincipal", "times": 1,
                        "status": 400, "code": "AccessDeniedException", "match": who}),
    )
    .await;

    let summary = reconcile_once().await;
    let f = finding(&summary, &who, ps).expect("the orphan is found");
    assert_eq!(f["action"], "revoked", "{f}");
    assert_eq!(assignment_count(&who, ps).await, 0);
    assert_eq!(summary["errors"], json!([]), "{summary}");
}

/// A lease written before the live index existed is invisible to the reconciler until
/// `break-glass leases index` puts it there; then its orphan is revoked. (On an account only
/// a `*` rule reaches, so that no sweep of the policy's pairs lists it.)
#[tokio::test]
async fn leases_from_before_the_live_index_are_indexed_once_by_the_cli() {
    let _turn = TURN.lock().await;
    let ps = s().get("READONLY_PERMISSION_SET_ARN");
    let account = "210987654321";
    let judy = s().get("ORG_WIDE_SLACK_USER_ID");
    let who = principal(&spare_user(5).1).await;
    let body = submission(judy, "V-reconcile-index", account, "ReadOnly", "1h", None);
    assert_eq!(post_signed(&body).await.0, 200);
    let id = break_glass::domain::RequestId::derive(&[
        s().get("SLACK_TEAM_ID"),
        judy,
        "modal",
        "V-reconcile-index",
    ])
    .to_string();
    wait_granted(&id).await;
    stop_execution_and_wait(&id).await;
    // As a version without the index wrote them: the lease and the creation intent.
    let pair = format!("{who}#{account}#{ps}");
    for (pk, sk) in [
        (format!("lease#{pair}"), "lease"),
        (format!("created#{pair}"), "intent"),
    ] {
        aws_sdk_dynamodb::Client::new(&sdk().await)
            .update_item()
            .table_name(s().get("TABLE_NAME"))
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(sk.into()))
            .update_expression("REMOVE live")
            .condition_expression("attribute_exists(pk)")
            .send()
            .await
            .unwrap();
    }
    let unseen = reconcile_once().await;
    assert!(finding(&unseen, &who, ps).is_none(), "{unseen}");

    let out = operator_cli()
        .args([
            "leases",
            "index",
            "--days",
            "2",
            "--table",
            s().get("TABLE_NAME"),
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("lease(s)"), "{said}");
    let summary = reconcile_once().await;
    let f = finding(&summary, &who, ps).expect("found once indexed");
    assert_eq!(f["action"], "revoked", "{f}");
    let left = sso()
        .await
        .list_account_assignments_for_principal()
        .instance_arn(s().get("SSO_INSTANCE_ARN"))
        .principal_id(&who)
        .principal_type(aws_sdk_ssoadmin::types::PrincipalType::User)
        .send()
        .await
        .unwrap();
    assert!(
        !left
            .account_assignments()
            .iter()
            .any(|a| a.account_id() == Some(account)),
        "{left:?}"
    );
}
