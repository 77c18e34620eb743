//! The modal's type-ahead on the local stack: Slack's `block_suggestion`, signed, answered
//! with the accounts and permission sets the policy allows this user, filtered by what they
//! typed; the organization's accounts (moto's AWS Organizations) where a rule says `*`; and
//! a crafted submission of an account the user may not have refused whole.
//!
//! The organization is created by the first test that needs it; the webhook keeps no copy
//! of the account list here (`ACCOUNTS_CACHE_SECONDS=0`), so it sees it at once.

mod common;

use common::*;
use serde_json::{Value, json};

/// The tests take turns: one of them slows the organization's listing down.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn s() -> &'static Stack {
    start_with_env("1h", 3, &[], &[("ACCOUNTS_CACHE_SECONDS", "0")])
}

/// The organization: the test bed's account (moto's management account) and three more.
async fn organization() -> Vec<(String, String)> {
    static ORG: tokio::sync::OnceCell<Vec<(String, String)>> = tokio::sync::OnceCell::const_new();
    ORG.get_or_init(|| async {
        s();
        let org = aws_sdk_organizations::Client::new(&sdk().await);
        let _ = org
            .create_organization()
            .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
            .send()
            .await;
        let mut out = Vec::new();
        for name in ["payments-prod", "payments-staging", "sandbox"] {
            let created = org
                .create_account()
                .account_name(name)
                .email(format!("{name}@example.com"))
                .send()
                .await
                .unwrap();
            let id = created
                .create_account_status()
                .and_then(|s| s.account_id())
                .unwrap()
                .to_owned();
            out.push((name.to_owned(), id));
        }
        out
    })
    .await
    .clone()
}

fn account_of(org: &[(String, String)], name: &str) -> String {
    org.iter().find(|(n, _)| n == name).unwrap().1.clone()
}

/// A keystroke in a picker of the form, as Slack sends it (`account`: already chosen).
fn keystroke(user: &str, picker: &str, typed: &str, account: Option<&str>) -> Vec<u8> {
    let mut values = json!({});
    if let Some(a) = account {
        values["account"] = json!({"account": {"type": "external_select",
                                               "selected_option": {"value": a}}});
    }
    let payload = json!({
        "type": "block_suggestion",
        "team": {"id": s().get("SLACK_TEAM_ID")}, "user": {"id": user},
        "api_app_id": s().get("SLACK_API_APP_ID"),
        "action_id": picker, "block_id": picker, "value": typed,
        "container": {"type": "view", "view_id": "V-picker"},
        "view": {"id": "V-picker", "type": "modal", "callback_id": "break_glass_request",
                 "private_metadata": "{}", "state": {"values": values}}
    });
    serde_urlencoded::to_string([("payload", payload.to_string())])
        .unwrap()
        .into_bytes()
}

/// The (value, label) pairs offered for one keystroke.
async fn offered(
    user: &str,
    picker: &str,
    typed: &str,
    account: Option<&str>,
) -> Vec<(String, String)> {
    let (status, reply) = post_signed(&keystroke(user, picker, typed, account)).await;
    assert_eq!(status, 200, "{reply}");
    let v: Value = serde_json::from_str(&reply).unwrap();
    v["options"]
        .as_array()
        .unwrap_or_else(|| panic!("not an options answer: {reply}"))
        .iter()
        .map(|o| {
            (
                o["value"].as_str().unwrap().to_owned(),
                o["text"]["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn values(offered: &[(String, String)]) -> Vec<&str> {
    offered.iter().map(|(v, _)| v.as_str()).collect()
}

fn labels(offered: &[(String, String)]) -> Vec<&str> {
    offered.iter().map(|(_, l)| l.as_str()).collect()
}

#[tokio::test]
async fn suggestions_offer_what_the_policy_allows_filtered_by_what_was_typed() {
    let _turn = TURN.lock().await;
    let org = organization().await;
    let alice = s().get("EXAMPLE_SLACK_USER_ID");
    let judy = s().get("ORG_WIDE_SLACK_USER_ID");
    let home = s().get("EXAMPLE_ACCOUNT_ID");

    // Alice's rules name one account: the organization's others are not hers to pick.
    let all = offered(alice, "account", "", None).await;
    assert_eq!(values(&all), [home]);
    assert_eq!(
        labels(&all),
        [format!("production ({home})")],
        "the policy's name wins"
    );
    assert_eq!(
        values(&offered(alice, "account", "PROD", None).await),
        [home]
    );
    assert!(offered(alice, "account", "payments", None).await.is_empty());

    // Judy's rule says every account: the organization's, by name or id.
    let payments = offered(judy, "account", "payments", None).await;
    assert_eq!(
        labels(&payments),
        [
            format!("payments-prod ({})", account_of(&org, "payments-prod")),
            format!(
                "payments-staging ({})",
                account_of(&org, "payments-staging")
            ),
        ]
    );
    let sandbox = account_of(&org, "sandbox");
    assert_eq!(
        values(&offered(judy, "account", &sandbox[..6], None).await),
        [sandbox.as_str()],
        "an id typed in part"
    );
    let everything = offered(judy, "account", "", None).await;
    assert_eq!(everything.len(), 4, "{everything:?}");
    assert!(everything.contains(&(home.to_owned(), format!("production ({home})"))));

    // Permission sets: those of the rules on the account chosen, by name.
    let on_payments = account_of(&org, "payments-prod");
    assert_eq!(
        labels(&offered(judy, "permission_set", "", Some(&on_payments)).await),
        ["ReadOnly"],
        "only the org-wide rule reaches that account"
    );
    let on_home = offered(judy, "permission_set", "", Some(home)).await;
    assert_eq!(
        labels(&on_home),
        [
            "BreakGlassAdmin",
            "BreakGlassGated",
            "BreakGlassIncident",
            "BreakGlassSecondary",
            "ReadOnly"
        ]
    );
    assert_eq!(
        values(&offered(judy, "permission_set", "admin", Some(home)).await),
        [s().get("EXAMPLE_PERMISSION_SET_ARN")],
        "the value is the ARN"
    );
    let gated = offered(alice, "permission_set", "gated", Some(home)).await;
    assert_eq!(labels(&gated), ["BreakGlassGated"]);
    assert!(
        offered(alice, "permission_set", "", Some(&on_payments))
            .await
            .is_empty(),
        "nothing for alice on an account she may not have"
    );

    // Someone no rule covers is offered nothing; an unsigned keystroke is refused.
    assert!(offered("U0MALLORY01", "account", "", None).await.is_empty());
    let (status, _) = post(&keystroke(alice, "account", "", None), None, 0).await;
    assert_eq!(status, 401);
}

/// The pickers only offer; the submission decides. An account of the organization alice
/// was never offered, submitted anyway, is refused and records nothing; an account outside
/// the organization is refused even under a `*` rule; the organization's account is judy's
/// to break glass into.
#[tokio::test]
async fn a_crafted_submission_of_an_account_the_user_may_not_have_is_refused() {
    let _turn = TURN.lock().await;
    let org = organization().await;
    let alice = s().get("EXAMPLE_SLACK_USER_ID");
    let payments = account_of(&org, "payments-prod");
    let crafted = submission(
        alice,
        "V-picker-crafted",
        &payments,
        s().get("EXAMPLE_PERMISSION_SET_ARN"),
        "1h",
        Some("crafted"),
    );
    let (status, reply) = post_signed(&crafted).await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(v["response_action"], "errors", "{reply}");
    let said = v["errors"].as_object().unwrap().values().next().unwrap();
    assert!(said.as_str().unwrap().contains(&payments), "{reply}");
    let id = break_glass::domain::RequestId::derive(&[
        s().get("SLACK_TEAM_ID"),
        alice,
        "modal",
        "V-picker-crafted",
    ])
    .to_string();
    assert!(request_item(&id).await.is_none(), "nothing recorded");
    let sfn = aws_sdk_sfn::Client::new(&sdk().await);
    assert!(executions_named(&sfn, &id).await.is_empty());

    let judy = s().get("ORG_WIDE_SLACK_USER_ID");
    let outside = submission(
        judy,
        "V-picker-nowhere",
        "999999999999",
        "ReadOnly",
        "1h",
        None,
    );
    let (_, reply) = post_signed(&outside).await;
    assert!(
        reply.contains("not an active account of the organization"),
        "a `*` rule covers no account outside the organization: {reply}"
    );
    let allowed = submission(judy, "V-picker-judy", &payments, "ReadOnly", "1h", None);
    let (status, reply) = post_signed(&allowed).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&reply).unwrap(),
        json!({"response_action": "clear"}),
        "an account of the organization under a `*` rule"
    );
    let id = break_glass::domain::RequestId::derive(&[
        s().get("SLACK_TEAM_ID"),
        judy,
        "modal",
        "V-picker-judy",
    ])
    .to_string();
    wait_granted(&id).await;
    press(judy, "end_access", &id).await;
    assert_eq!(
        finished(&id, 60).await.0,
        aws_sdk_sfn::types::ExecutionStatus::Succeeded
    );
}

/// A slow listing of the organization (a cold start in a large one: ListAccounts gives 20
/// accounts a page) never holds a keystroke past its deadline: it is answered with the
/// policy's accounts while the listing goes on, and a later keystroke finds it done.
#[tokio::test]
async fn a_slow_organization_listing_never_holds_a_keystroke() {
    let _turn = TURN.lock().await;
    organization().await;
    let judy = s().get("ORG_WIDE_SLACK_USER_ID");
    inject_fault(json!({"operation": "ListAccounts", "times": 1, "slow_seconds": 5})).await;
    let first = offered(judy, "account", "payments", None).await;
    assert!(first.is_empty(), "not waited for: {first:?}");
    assert_eq!(
        values(&offered(judy, "account", "production", None).await),
        [s().get("EXAMPLE_ACCOUNT_ID")],
        "the policy's accounts meanwhile"
    );
    let found = eventually("the listing to finish", 30, || async {
        let found = offered(judy, "account", "payments", None).await;
        (found.len() == 2).then_some(found)
    })
    .await;
    assert!(
        found.iter().all(|(_, l)| l.starts_with("payments-")),
        "{found:?}"
    );
    let hits = fault_hits().await;
    assert!(hits.to_string().contains("ListAccounts"), "{hits}");
}
