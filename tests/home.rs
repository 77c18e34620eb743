//! Slack as the console, on the local stack: the Events API on the webhook's URL (the
//! handshake answered, unsigned and foreign events refused), the App Home published on
//! `app_home_opened` and again when something changes, its End button ending the access, a
//! reviewer's Home with the pending review and working review buttons, the weekly digest of a
//! seeded week, and `slack post-button` checked against the policy, posting a button that
//! works.
//!
//! Leases last an hour here, so that live access stays live until a test ends it.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use break_glass::slack::signature::sign;
use common::*;
use serde_json::{Value, json};

fn s() -> &'static Stack {
    stack_with("1h")
}

fn user(i: usize) -> (String, String) {
    s();
    spare_user(i)
}

/// Posts an Events API request (JSON), signed with `secret` (None: unsigned).
async fn post_event(event: &Value, secret: Option<&str>) -> (u16, String) {
    let body = event.to_string();
    let ts = now().to_string();
    let mut req = reqwest::Client::new()
        .post(s().get("WEBHOOK_URL"))
        .header("content-type", "application/json")
        .body(body.clone());
    if let Some(secret) = secret {
        req = req.header("X-Slack-Request-Timestamp", &ts).header(
            "X-Slack-Signature",
            sign(secret.as_bytes(), &ts, body.as_bytes()),
        );
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn home_opened(user: &str, team: &str) -> Value {
    json!({
        "type": "event_callback", "team_id": team, "api_app_id": s().get("SLACK_API_APP_ID"),
        "event_id": format!("Ev{user}"), "event_time": now(),
        "event": {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home"}
    })
}

async fn open_home(user: &str) {
    let (status, body) = post_event(
        &home_opened(user, s().get("SLACK_TEAM_ID")),
        Some(s().get("SLACK_SIGNING_SECRET")),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, ""));
}

/// The views published for `user`, oldest first.
async fn published(user: &str) -> Vec<Value> {
    slack_requests()
        .await
        .into_iter()
        .filter(|r| r["path"] == "/api/views.publish" && r["body"]["user_id"] == user)
        .map(|r| r["body"]["view"].clone())
        .collect()
}

fn has(view: &Value, action: &str, id: &str) -> bool {
    buttons(view).iter().any(|(a, v)| a == action && v == id)
}

async fn break_glass(user: &str, tag: &str) -> String {
    let body = seed_click(user, tag, s().get("EXAMPLE_PERMISSION_SET_ARN"));
    let id = request_id_of(&body);
    let (status, reply) = post_signed(&body).await;
    assert_eq!(status, 200, "{reply}");
    wait_granted(&id).await;
    id
}

#[tokio::test]
async fn the_events_api_shares_the_front_door() {
    let secret = s().get("SLACK_SIGNING_SECRET");
    let handshake = json!({"type": "url_verification", "token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"});
    let (status, body) = post_event(&handshake, Some(secret)).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    // Unsigned, or signed with another secret: refused before anything reads the body.
    let (user, _) = user(3);
    assert_eq!(post_event(&handshake, None).await, (401, String::new()));
    assert_eq!(
        post_event(
            &home_opened(&user, s().get("SLACK_TEAM_ID")),
            Some("not-the-secret-0123456789")
        )
        .await
        .0,
        401
    );
    // Another workspace's event: refused, nothing published.
    assert_eq!(
        post_event(&home_opened(&user, "T0OTHERTEAM"), Some(secret))
            .await
            .0,
        403
    );
    // Events that are not ours are acknowledged and ignored.
    let other = json!({"type": "event_callback", "team_id": s().get("SLACK_TEAM_ID"),
                       "api_app_id": s().get("SLACK_API_APP_ID"),
                       "event": {"type": "app_mention", "user": user, "text": "hi"}});
    assert_eq!(post_event(&other, Some(secret)).await, (200, String::new()));
    assert!(
        published(&user).await.is_empty(),
        "nothing published for them"
    );
}

#[tokio::test]
async fn the_home_shows_live_access_and_its_end_button_ends_it() {
    let (alice, _) = user(0);
    let id = break_glass(&alice, "1700000501.000100").await;
    // Refreshed by the grant itself, before the tab is even opened.
    let after_grant = eventually("a view published after the grant", 10, || async {
        published(&alice)
            .await
            .into_iter()
            .find(|v| has(v, "end_access", &id))
    })
    .await;
    assert!(
        after_grant.to_string().contains("production"),
        "{after_grant}"
    );
    // Opening the tab publishes it (again): the live access with End and Extend.
    let before = published(&alice).await.len();
    open_home(&alice).await;
    let views = published(&alice).await;
    assert_eq!(views.len(), before + 1);
    let view = views.last().unwrap();
    assert_eq!(view["type"], "home");
    assert!(
        has(view, "end_access", &id) && has(view, "extend_access", &id),
        "{view}"
    );
    // Opened again (or the event retried by Slack): published again, harmlessly.
    open_home(&alice).await;
    assert_eq!(published(&alice).await.len(), before + 2);

    // The Home's End button is the thread's: it ends the access.
    let answer = press(&alice, "end_access", &id).await;
    assert!(answer.contains("being removed"), "{answer}");
    eventually("access to be revoked", 30, || async {
        let item = request_item(&id).await?;
        item.get("revoked_at").map(|_| ())
    })
    .await;
    let last = eventually("a view without the access", 10, || async {
        let views = published(&alice).await;
        let last = views.last()?.clone();
        (!has(&last, "end_access", &id)).then_some(last)
    })
    .await;
    assert!(
        last.to_string().contains(&id),
        "still listed among recent requests: {last}"
    );
}

#[tokio::test]
async fn a_reviewers_home_lists_the_pending_review_and_its_buttons_record_it() {
    let (bob, _) = user(1);
    let reviewer = s().get("EXAMPLE_REVIEWER_SLACK_USER_ID").to_owned();
    let id = break_glass(&bob, "1700000502.000100").await;
    press(&bob, "end_access", &id).await;
    eventually("the review message", 60, || async {
        let item = request_item(&id).await?;
        item.get("review_ts").map(|_| ())
    })
    .await;
    open_home(&reviewer).await;
    let view = published(&reviewer).await.pop().unwrap();
    assert!(has(&view, "review_ok", &id), "{view}");
    assert!(has(&view, "review_follow_up", &id), "{view}");
    // The requester's own Home shows the review as pending, without review buttons.
    open_home(&bob).await;
    let own = published(&bob).await.pop().unwrap();
    assert!(!has(&own, "review_ok", &id));
    assert!(own.to_string().contains("review pending"), "{own}");

    let answer = press(&reviewer, "review_ok", &id).await;
    assert_eq!(answer, "Recorded: reviewed — fine.");
    let item = request_item(&id).await.unwrap();
    assert_eq!(item["reviewed_by"], AttributeValue::S(reviewer.clone()));
    // Both Homes are refreshed: no buttons for it any more, the outcome shown.
    let view = published(&reviewer).await.pop().unwrap();
    assert!(!has(&view, "review_ok", &id), "{view}");
    let own = published(&bob).await.pop().unwrap();
    assert!(own.to_string().contains("reviewed — fine"), "{own}");
}

#[tokio::test]
async fn the_digest_counts_a_seeded_week() {
    use break_glass::aws::store::Store;
    use break_glass::domain::request::{Audit, RequestRecord, Status};
    use break_glass::domain::review::{Digest, Outcome, Review};
    use break_glass::domain::{AccountId, Duration, PermissionSetArn, RequestId};
    s();
    let store = Store::new(
        aws_sdk_dynamodb::Client::new(&sdk().await),
        s().get("TABLE_NAME"),
    );
    let at = |t: &str| break_glass::time_util::from_rfc3339(t).unwrap();
    let seeded = |n: usize, outcome: Option<Outcome>, flags: [usize; 4], ended_by: Option<&str>| {
        RequestRecord {
            id: RequestId::derive(&["digest-week", &n.to_string()]),
            status: Status::Reported,
            version: 5,
            team_id: s().get("SLACK_TEAM_ID").into(),
            slack_user_id: "U0ALICE0001".into(),
            sso_user_name: "alice@example.com".into(),
            account_id: AccountId::parse(s().get("EXAMPLE_ACCOUNT_ID")).unwrap(),
            more_accounts: Vec::new(),
            permission_set_arn: PermissionSetArn::parse(s().get("EXAMPLE_PERMISSION_SET_ARN"))
                .unwrap(),
            duration: Duration::from_secs(3600),
            rule: "oncall".into(),
            reason: None,
            max_duration: Duration::from_secs(3600),
            channel_id: None,
            response_url: None,
            notify_channel: None,
            thread_ts: None,
            permission_set_name: Some("BreakGlassAdmin".into()),
            requested_at: at(&format!("2020-01-{:02}T08:00:00Z", 6 + n)),
            principal_id: None,
            preexisting: false,
            shared: false,
            ended_by: ended_by.map(str::to_owned),
            ended_at: None,
            hold_token: None,
            clicks: Vec::new(),
            creation_request_id: None,
            granted_at: Some(at(&format!("2020-01-{:02}T08:00:05Z", 6 + n))),
            expires_at: None,
            revoked_at: Some(at(&format!("2020-01-{:02}T09:00:00Z", 6 + n))),
            reported_at: Some(at(&format!("2020-01-{:02}T09:20:00Z", 6 + n))),
            end_sessions: false,
            sessions_denied_until: None,
            sessions_lifted_at: None,
            revoke_failed_at: None,
            after_end_checked_at: None,
            reconciled_at: (n == 2).then(|| at("2020-01-08T09:00:00Z")),
            digest: Some(Digest {
                events: 10,
                flags,
                ..Digest::default()
            }),
            review: Review {
                pending: outcome.is_none(),
                outcome,
                by: outcome.map(|_| "U0REVIEWR1".to_owned()),
                at: outcome.map(|_| at(&format!("2020-01-{:02}T09:30:00Z", 6 + n))),
                ..Review::default()
            },
            approval: Default::default(),
            incident_id: None,
            incident_url: None,
        }
    };
    let week = [
        seeded(0, Some(Outcome::Fine), [0, 2, 0, 0], None),
        seeded(
            1,
            Some(Outcome::FollowUp),
            [1, 0, 0, 0],
            Some("U0ALICE0001"),
        ),
        seeded(2, None, [0, 0, 0, 0], None),
        // The week after: not counted.
        seeded(7, None, [5, 0, 0, 0], None),
    ];
    for r in &week {
        let audit = Audit {
            event: "seeded",
            actor: "test",
            detail: String::new(),
        };
        store.create(r, audit, None).await.unwrap();
    }
    let out = invoke_worker(json!({"type": "digest", "until": "2020-01-12T23:59:59Z"})).await;
    assert_eq!(out["uses"], 3, "{out}");
    assert_eq!(out["reviewed"], 2, "{out}");
    assert_eq!(out["follow_ups"], 1, "{out}");
    assert_eq!(out["pending"], 1, "{out}");
    assert_eq!(out["median_seconds_to_review"], 600, "{out}");
    assert_eq!(out["ended_early"], 1, "{out}");
    assert_eq!(out["reconciler_revoked"], 1, "{out}");
    assert_eq!(out["by_rule"]["oncall"], 3, "{out}");
    assert_eq!(out["most_flagged"][0][0], week[1].id.as_str(), "{out}");
    assert_eq!(out["posted_to"], s().get("REVIEW_CHANNEL"));
    let posted = slack_requests()
        .await
        .into_iter()
        .find(|r| {
            r["path"] == "/api/chat.postMessage"
                && r["body"]["channel"] == s().get("REVIEW_CHANNEL")
                && r["body"]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("2020-01-06"))
        })
        .expect("the digest in the review channel");
    assert!(
        posted["body"]["text"]
            .as_str()
            .unwrap()
            .contains("*3* use(s)")
    );
}

/// Runs `break-glass slack post-button` against the local stack.
fn post_button(account: &str) -> std::process::Output {
    operator_cli()
        .args([
            "slack",
            "post-button",
            "--channel",
            "C0DEPLOYS1",
            "--account",
            account,
        ])
        .args(["--permission-set", s().get("EXAMPLE_PERMISSION_SET_ARN")])
        .env("POLICY_FILE", s().get("POLICY_FILE"))
        .env("SLACK_SECRET_ARN", s().get("SLACK_SECRET_ARN"))
        .env("SLACK_API_URL", s().get("SLACK_API_URL"))
        .env("SSO_INSTANCE_ARN", s().get("SSO_INSTANCE_ARN"))
        .env_remove("SLACK_BOT_TOKEN")
        .output()
        .unwrap()
}

#[tokio::test]
async fn post_button_checks_the_policy_and_posts_a_button_that_works() {
    let (carol, _) = user(2);
    let buttons_in = |channel: &str, requests: &[Value]| -> Vec<Value> {
        requests
            .iter()
            .filter(|r| r["path"] == "/api/chat.postMessage" && r["body"]["channel"] == channel)
            .map(|r| r["body"].clone())
            .collect()
    };
    // An account the policy does not allow: refused, nothing posted.
    let refused = post_button("999999999999");
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("no allow rule names account 999999999999"),
        "{err}"
    );
    assert!(buttons_in("C0DEPLOYS1", &slack_requests().await).is_empty());

    let ok = post_button(s().get("EXAMPLE_ACCOUNT_ID"));
    let (out, err) = (
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr),
    );
    assert!(ok.status.success(), "{err}");
    assert!(
        !out.contains("xoxb-") && !err.contains("xoxb-"),
        "the token is never printed"
    );
    let posted = buttons_in("C0DEPLOYS1", &slack_requests().await);
    assert_eq!(posted.len(), 1, "{posted:?}");
    let actions = posted[0]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap()
        .clone();
    let button = &actions["elements"][0];
    assert_eq!(button["action_id"], "break_glass");

    // Clicked, as Slack would deliver it: the webhook accepts it and grants.
    let payload = json!({
        "type": "block_actions", "team": {"id": s().get("SLACK_TEAM_ID")}, "user": {"id": carol},
        "api_app_id": s().get("SLACK_API_APP_ID"), "channel": {"id": "C0DEPLOYS1"},
        "container": {"type": "message", "message_ts": "1700000503.000100"},
        "response_url": format!("{}/response/button", s().get("SLACK_FAKE_URL")),
        "actions": [{"action_id": "break_glass", "block_id": actions["block_id"], "value": button["value"],
                     "type": "button", "action_ts": "1700000503.000200"}]
    });
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let id = request_id_of(body.as_bytes());
    let (status, reply) = post_signed(body.as_bytes()).await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("Glass broken - access incoming"), "{reply}");
    wait_granted(&id).await;
    press(&carol, "end_access", &id).await;
}
