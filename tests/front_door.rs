//! The Slack front door on the local stack: identity through Slack e-mail and groups,
//! refusals, the slash command's modal, and the follow-up conversation.

mod common;

use common::*;
use serde_json::{Value, json};

fn slash_command(user: &str, trigger: &str) -> Vec<u8> {
    let s = stack();
    serde_urlencoded::to_string([
        ("token", "legacy"),
        ("team_id", s.get("SLACK_TEAM_ID")),
        ("api_app_id", s.get("SLACK_API_APP_ID")),
        ("channel_id", "C0INCIDENT1"),
        ("user_id", user),
        ("command", "/break-glass"),
        ("text", ""),
        (
            "response_url",
            &format!("{}/response/cmd", s.get("SLACK_FAKE_URL")),
        ),
        ("trigger_id", trigger),
    ])
    .unwrap()
    .into_bytes()
}

#[tokio::test]
async fn an_unmapped_user_is_found_through_their_slack_email() {
    let s = stack();
    let body = seed_click(
        s.get("EMAIL_SLACK_USER_ID"),
        "1700000101.000100",
        s.get("EXAMPLE_PERMISSION_SET_ARN"),
    );
    let id = request_id_of(&body);
    let (status, reply) = post_signed(&body).await;
    assert_eq!(status, 200);
    assert!(reply.contains("Glass broken - access incoming"), "{reply}");
    let item = request_item(&id).await.expect("request recorded");
    assert_eq!(
        item["sso_user_name"].as_s().unwrap(),
        s.get("EMAIL_SSO_USER_NAME")
    );
    assert!(
        item.contains_key("principal_id"),
        "the Identity Store id was resolved"
    );
    let lookups = slack_requests().await;
    assert!(
        lookups
            .iter()
            .any(|r| r["path"] == "/api/users.info"
                && r["body"]["user"] == s.get("EMAIL_SLACK_USER_ID")),
        "users.info was asked"
    );
}

#[tokio::test]
async fn bots_guests_deactivated_users_and_strangers_are_refused_with_a_reason() {
    let s = stack();
    let sfn = aws_sdk_sfn::Client::new(&sdk().await);
    for (user, why) in [
        ("U0BOT00001", "bots cannot break glass"),
        ("U0GUEST001", "guest accounts cannot break glass"),
        ("U0GONE0001", "deactivated users cannot break glass"),
        (
            "U0STRANGE1",
            "users from other workspaces cannot break glass",
        ),
    ] {
        let body = seed_click(
            user,
            "1700000102.000100",
            s.get("EXAMPLE_PERMISSION_SET_ARN"),
        );
        let id = request_id_of(&body);
        let (status, reply) = post_signed(&body).await;
        assert_eq!(status, 200, "{user}");
        assert!(reply.contains(why), "{user}: {reply}");
        assert!(
            executions_named(&sfn, &id).await.is_empty(),
            "{user}: nothing started"
        );
        assert!(
            request_item(&id).await.is_none(),
            "{user}: no request recorded"
        );
        assert_eq!(
            audit_names(&id).await,
            ["denied"],
            "{user}: the refusal is audited"
        );
    }
}

#[tokio::test]
async fn the_slash_command_offers_only_what_the_policy_allows() {
    let s = stack();
    let (status, _) = post_signed(&slash_command(
        s.get("GROUP_SLACK_USER_ID"),
        "trigger-dave-1",
    ))
    .await;
    assert_eq!(status, 200);
    let (status, _) = post_signed(&slash_command(
        s.get("EXAMPLE_SLACK_USER_ID"),
        "trigger-alice-1",
    ))
    .await;
    assert_eq!(status, 200);
    let (status, reply) = post_signed(&slash_command("U0MALLORY01", "trigger-mallory-1")).await;
    assert_eq!(status, 200);
    assert!(reply.contains("Break glass refused"), "{reply}");

    let opened: Vec<Value> = slack_requests()
        .await
        .into_iter()
        .filter(|r| r["path"] == "/api/views.open")
        .collect();
    let view_for = |trigger: &str| {
        opened
            .iter()
            .find(|r| r["body"]["trigger_id"] == trigger)
            .unwrap_or_else(|| panic!("no views.open for {trigger}"))["body"]["view"]
            .clone()
    };
    assert!(
        opened
            .iter()
            .all(|r| r["body"]["trigger_id"] != "trigger-mallory-1")
    );
    let dave = view_for("trigger-dave-1");
    let options = |view: &Value, block: usize| -> Vec<String> {
        view["blocks"][block]["element"]["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["value"].as_str().unwrap().to_owned())
            .collect()
    };
    for (block, id) in [(0, "account"), (1, "permission_set")] {
        let picker = &dave["blocks"][block]["element"];
        assert_eq!(
            picker["type"], "external_select",
            "type-ahead (tests/pickers.rs)"
        );
        assert_eq!(picker["action_id"], id);
    }
    assert_eq!(
        options(&dave, 2),
        ["4s", "15m", "30m", "1h"],
        "nothing past the rule's 1h"
    );
    assert_eq!(
        dave["blocks"][3]["optional"], false,
        "the rule requires a reason"
    );
    assert!(
        dave["blocks"].as_array().unwrap().len() == 4,
        "no incident field: none of dave's rules needs one"
    );
    let alice = view_for("trigger-alice-1");
    assert_eq!(
        alice["blocks"][4]["block_id"], "incident",
        "one of alice's rules needs an incident: the modal asks for it"
    );
    assert_eq!(alice["blocks"][3]["optional"], true);
}

#[tokio::test]
async fn a_modal_submission_is_checked_again_and_errors_show_in_the_modal() {
    let s = stack();
    let dave = s.get("GROUP_SLACK_USER_ID");
    let account = s.get("EXAMPLE_ACCOUNT_ID");
    let cases = [
        (
            submission(dave, "V-dave-1", account, "ReadOnly", "30m", None),
            "reason",
        ),
        (
            submission(
                dave,
                "V-dave-2",
                account,
                "ReadOnly",
                "2h",
                Some("db on fire"),
            ),
            "duration",
        ),
        (
            submission(
                dave,
                "V-dave-3",
                account,
                s.get("EXAMPLE_PERMISSION_SET_ARN"),
                "30m",
                Some("x"),
            ),
            "permission_set",
        ),
        (
            submission(dave, "V-dave-4", "12345", "ReadOnly", "30m", Some("x")),
            "account",
        ),
    ];
    for (body, field) in cases {
        let (status, reply) = post_signed(&body).await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(v["response_action"], "errors", "{field}: {reply}");
        assert!(v["errors"][field].is_string(), "{field}: {reply}");
    }

    let good = submission(
        dave,
        "V-dave-5",
        account,
        "ReadOnly",
        "30m",
        Some("db <on> fire"),
    );
    let (status, reply) = post_signed(&good).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&reply).unwrap(),
        json!({"response_action": "clear"})
    );
    let id = break_glass::domain::RequestId::derive(&[
        s.get("SLACK_TEAM_ID"),
        dave,
        "modal",
        "V-dave-5",
    ])
    .to_string();
    let sfn = aws_sdk_sfn::Client::new(&sdk().await);
    assert_eq!(executions_named(&sfn, &id).await.len(), 1);
    let item = request_item(&id).await.unwrap();
    assert_eq!(
        item["sso_user_name"].as_s().unwrap(),
        s.get("GROUP_SSO_USER_NAME")
    );
    assert_eq!(item["duration_secs"].as_n().unwrap(), "1800");
    assert_eq!(item["reason"].as_s().unwrap(), "db <on> fire");
    assert_eq!(
        item["permission_set_arn"].as_s().unwrap(),
        s.get("READONLY_PERMISSION_SET_ARN")
    );
    let dm = slack_requests()
        .await
        .into_iter()
        .any(|r| r["path"] == "/api/chat.postMessage" && r["body"]["channel"] == dave);
    assert!(dm, "the requester hears back in a direct message");
}

/// A whole cycle's conversation: granted (with the lease buttons), revoked, report summary,
/// to the requester and in a thread of the policy's channel.
#[tokio::test]
async fn the_requester_and_the_channel_hear_every_step() {
    let s = stack();
    let ts = "1700000105.000100";
    let body = seed_click(
        s.get("SECOND_SLACK_USER_ID"),
        ts,
        s.get("EXAMPLE_PERMISSION_SET_ARN"),
    );
    let id = request_id_of(&body);
    assert_eq!(post_signed(&body).await.0, 200);
    finished(&id, 90).await;

    let all = slack_requests().await;
    let replies: Vec<&Value> = all
        .iter()
        .filter(|r| r["path"] == format!("/response/{ts}"))
        .collect();
    assert_eq!(
        replies.len(),
        4,
        "granted, revoked, reported, checked after the end: {replies:?}"
    );
    let granted = &replies[0]["body"];
    assert!(
        granted["text"]
            .as_str()
            .unwrap()
            .contains("has access to *production*"),
        "{granted}"
    );
    assert_eq!(granted["response_type"], "ephemeral");
    let buttons = &granted["blocks"][1]["elements"];
    assert_eq!(buttons[0]["action_id"], "end_access");
    assert_eq!(buttons[0]["value"], id.as_str());
    assert_eq!(buttons[1]["action_id"], "extend_access");
    assert_eq!(buttons[1]["value"], id.as_str());
    assert!(
        replies[1]["body"]["text"]
            .as_str()
            .unwrap()
            .contains("has ended")
    );
    assert!(
        replies[2]["body"]["text"]
            .as_str()
            .unwrap()
            .contains("Report on")
    );
    assert!(
        replies[3]["body"]["text"]
            .as_str()
            .unwrap()
            .contains("No use of *production*"),
        "one line when nothing was used after the end: {}",
        replies[3]["body"]
    );

    let channel: Vec<&Value> = all
        .iter()
        .filter(|r| {
            r["path"] == "/api/chat.postMessage" && r["body"]["channel"] == s.get("NOTIFY_CHANNEL")
        })
        .filter(|r| {
            r["body"]["text"]
                .as_str()
                .unwrap_or_default()
                .contains(s.get("SECOND_SSO_USER_NAME"))
        })
        .collect();
    assert_eq!(channel.len(), 4, "{channel:?}");
    assert!(
        channel[0]["body"]["thread_ts"].is_null(),
        "the first message starts the thread"
    );
    let thread = request_item(&id).await.unwrap()["thread_ts"]
        .as_s()
        .unwrap()
        .clone();
    assert_eq!(channel[1]["body"]["thread_ts"], thread.as_str());
    assert_eq!(channel[2]["body"]["thread_ts"], thread.as_str());
    assert_eq!(channel[3]["body"]["thread_ts"], thread.as_str());
    assert_eq!(audit_names(&id).await, WHOLE_CYCLE);
}

#[tokio::test]
async fn a_failing_response_url_never_fails_the_cycle() {
    let s = stack();
    // Point this click's response_url at a path the fake answers 404 to.
    let mut payload: Value = serde_json::from_str(
        &serde_urlencoded::from_bytes::<Vec<(String, String)>>(&seed_click(
            s.get("EXAMPLE_SLACK_USER_ID"),
            "1700000106.000100",
            s.get("EXAMPLE_PERMISSION_SET_ARN"),
        ))
        .unwrap()[0]
            .1,
    )
    .unwrap();
    payload["response_url"] = json!(format!("{}/gone/404", s.get("SLACK_FAKE_URL")));
    let body = serde_urlencoded::to_string([("payload", payload.to_string())])
        .unwrap()
        .into_bytes();
    let id = request_id_of(&body);
    assert_eq!(post_signed(&body).await.0, 200);
    let status = finished(&id, 90).await.0;
    assert_eq!(status, aws_sdk_sfn::types::ExecutionStatus::Succeeded);
    let dms = slack_requests()
        .await
        .into_iter()
        .filter(|r| {
            r["path"] == "/api/chat.postMessage"
                && r["body"]["channel"] == s.get("EXAMPLE_SLACK_USER_ID")
        })
        .filter(|r| {
            r["body"]["text"]
                .as_str()
                .unwrap_or_default()
                .contains("production")
        })
        .count();
    assert!(dms >= 3, "falls back to direct messages ({dms})");
}
