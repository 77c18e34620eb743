//! Tests of the Slack payload parser: the original demo message, Block Kit clicks, the slash command, view submissions, lease and review buttons, hostile payloads.
use super::*;

pub const SEED_PS: &str = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345";

/// The original demo's message, as Slack posts the click on its "Break Glass Prod" button.
pub fn seed_click(clicked: &str, value: &str) -> String {
    serde_json::json!({
        "type": "interactive_message",
        "actions": [{"name": clicked, "type": "button", "value": value}],
        "callback_id": "deployment_123456789012_abc",
        "team": {"id": "T0TESTTEAM", "domain": "example"},
        "channel": {"id": "C0DEPLOYS1", "name": "deploys"},
        "user": {"id": "U0ALICE0001", "name": "alice"},
        "action_ts": "1700000000.123456",
        "message_ts": "1699999990.000100",
        "attachment_id": "1",
        "token": "legacy-token",
        "is_app_unfurl": false,
        "original_message": {
            "text": "",
            "attachments": [{
                "callback_id": "deployment_123456789012_abc",
                "text": "Deployment *ABC* is being rolled back.",
                "actions": [
                    {"id": "1", "name": "retry", "text": "Retry", "type": "button", "value": "retry"},
                    {"id": "2", "name": "break_glass", "text": "Break Glass Prod", "type": "button",
                     "value": SEED_PS, "style": "danger"}
                ]
            }]
        },
        "response_url": "https://hooks.slack.com/actions/T0TESTTEAM/1/abc",
        "trigger_id": "1.2.3"
    })
    .to_string()
}

#[test]
fn parses_the_original_demo_message() {
    let Interaction::BreakGlass(c) = parse_payload(&seed_click("break_glass", SEED_PS)).unwrap()
    else {
        panic!()
    };
    assert_eq!(c.account_id.as_str(), "123456789012");
    assert_eq!(c.permission_set_arn.as_str(), SEED_PS);
    assert_eq!(c.user_id, "U0ALICE0001");
    assert_eq!(c.team_id, "T0TESTTEAM");
    assert_eq!(c.message_ts.as_deref(), Some("1699999990.000100"));
}

#[test]
fn the_clicked_action_decides_not_the_first_button() {
    // Clicking "Retry" (the message's first button) is not a break-glass request.
    assert!(matches!(
        parse_payload(&seed_click("retry", "retry")).unwrap(),
        Interaction::Ignored { .. }
    ));
    // A break_glass click whose value is not an ARN is refused, whatever the message holds.
    assert!(matches!(
        parse_payload(&seed_click("break_glass", "retry")),
        Err(PayloadError::BadField {
            field: "actions[0].value",
            ..
        })
    ));
}

#[test]
fn block_kit_click() {
    let json = serde_json::json!({
        "type": "block_actions",
        "team": {"id": "T1"}, "user": {"id": "U1", "username": "a"},
        "api_app_id": "A1",
        "container": {"type": "message", "message_ts": "1.2"},
        "channel": {"id": "C1"},
        "response_url": "https://hooks.slack.com/actions/x",
        "actions": [{"action_id": "break_glass", "block_id": "bg_123456789012_x", "value": SEED_PS,
                     "type": "button", "action_ts": "3.4"}]
    });
    let Interaction::BreakGlass(c) = parse_payload(&json.to_string()).unwrap() else {
        panic!()
    };
    assert_eq!(c.account_id.as_str(), "123456789012");
    assert_eq!(c.api_app_id.as_deref(), Some("A1"));
    assert_eq!(c.message_ts.as_deref(), Some("1.2"));
}

#[test]
fn slash_command() {
    let body = b"token=x&team_id=T1&team_domain=ex&channel_id=C1&user_id=U1&command=%2Fbreak-glass&text=&api_app_id=A1&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2F1&trigger_id=13345224609.738474920.8088930838d88f008e0";
    let Interaction::Command(c) = parse_form(body).unwrap() else {
        panic!()
    };
    assert_eq!(c.origin.user_id, "U1");
    assert_eq!(c.trigger_id, "13345224609.738474920.8088930838d88f008e0");
    assert_eq!(
        parse_form(b"command=%2Fother&team_id=T1&user_id=U1&trigger_id=t"),
        Err(PayloadError::UnknownType("/other".into()))
    );
    assert!(matches!(
        parse_form(b"command=%2Fbreak-glass&team_id=T1&user_id=U1"),
        Err(PayloadError::BadField {
            field: "trigger_id",
            ..
        })
    ));
}

#[test]
fn view_submission() {
    let json = serde_json::json!({
        "type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U1"}, "api_app_id": "A1",
        "view": {"id": "V1", "callback_id": "break_glass_request", "private_metadata": "{}",
            "state": {"values": {
                "account": {"account": {"type": "static_select", "selected_option": {"value": "123456789012"}}},
                "permission_set": {"permission_set": {"type": "static_select", "selected_option": {"value": SEED_PS}}},
                "duration": {"duration": {"type": "static_select", "selected_option": {"value": "1h"}}},
                "reason": {"reason": {"type": "plain_text_input", "value": "  "}}
            }}}
    });
    let Interaction::Submission(s) = parse_payload(&json.to_string()).unwrap() else {
        panic!()
    };
    assert_eq!(s.accounts, ["123456789012"]);
    assert_eq!(s.permission_set.as_deref(), Some(SEED_PS));
    assert_eq!(s.duration.as_deref(), Some("1h"));
    assert_eq!(s.reason, None, "a blank reason is no reason");
    assert_eq!(s.incident, None, "the form had no incident field");
    assert_eq!(s.view_id, "V1");
}

#[test]
fn multi_select_submission_keeps_order_and_drops_repeats() {
    let json = serde_json::json!({
        "type": "view_submission", "team": {"id": "T1"}, "user": {"id": "U1"},
        "view": {"id": "V1", "callback_id": "break_glass_request", "private_metadata": "{}",
            "state": {"values": {
                "account": {"account": {"type": "multi_external_select", "selected_options": [
                    {"value": "222222222222"}, {"value": "111111111111"}, {"value": "222222222222"}, {"value": " "}]}}
            }}}
    });
    let Interaction::Submission(s) = parse_payload(&json.to_string()).unwrap() else {
        panic!()
    };
    assert_eq!(s.accounts, ["222222222222", "111111111111"]);
}

#[test]
fn approval_buttons() {
    for (action, approve) in [("approve_request", true), ("deny_request", false)] {
        let json = serde_json::json!({
            "type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U2"}, "api_app_id": "A1",
            "actions": [{"action_id": action, "block_id": "approval", "value": "bg-0123", "type": "button", "action_ts": "1"}]
        });
        let i = parse_payload(&json.to_string()).unwrap();
        assert_eq!(i.kind(), action);
        assert_eq!(i.user_id(), "U2");
        let Interaction::Approval(a) = i else {
            panic!()
        };
        assert_eq!((a.approve, a.request_id.as_str()), (approve, "bg-0123"));
        assert_eq!(a.origin.api_app_id.as_deref(), Some("A1"));
    }
}

#[test]
fn lease_buttons() {
    let json = serde_json::json!({
        "type": "block_actions", "team": {"id": "T1"}, "user": {"id": "U1"},
        "actions": [{"action_id": "end_access", "value": "bg-0123", "type": "button", "action_ts": "1"}]
    });
    let Interaction::Lease(l) = parse_payload(&json.to_string()).unwrap() else {
        panic!()
    };
    assert!(!l.extend);
    assert_eq!(l.request_id, "bg-0123");
}

#[test]
fn callback_ids() {
    assert_eq!(
        account_from_id("f", "a_123456789012_b").unwrap().as_str(),
        "123456789012"
    );
    assert_eq!(
        account_from_id("f", "my_deploy_123456789012_")
            .unwrap()
            .as_str(),
        "123456789012"
    );
    for bad in [
        "123456789012",
        "a_123456789012",
        "123456789012_b",
        "a_12345678901_b",
        "a_123456789012_210987654321_b",
        "",
    ] {
        assert!(account_from_id("f", bad).is_err(), "{bad:?}");
    }
}

#[test]
fn bad_payloads() {
    assert_eq!(parse_form(b"foo=bar"), Err(PayloadError::MissingPayload));
    assert!(matches!(
        parse_payload(
            r#"{"type":"view_submission","team":{"id":"T"},"user":{"id":"U"},"view":{"id":"V","callback_id":"other","state":{"values":{}}}}"#
        ),
        Err(PayloadError::UnknownType(_))
    ));
    assert_eq!(parse_form(b"%%%"), Err(PayloadError::MissingPayload));
    assert!(matches!(
        parse_form(b"payload=%7Bnot+json"),
        Err(PayloadError::BadJson(_))
    ));
    assert_eq!(
        parse_payload(r#"{"type":"dialog_submission"}"#),
        Err(PayloadError::UnknownType("dialog_submission".into()))
    );
    assert!(matches!(
        parse_payload(r#"{"no":"type"}"#),
        Err(PayloadError::BadJson(_))
    ));
    // Truncated JSON of a real click.
    let full = seed_click("break_glass", SEED_PS);
    assert!(matches!(
        parse_payload(&full[..full.len() / 2]),
        Err(PayloadError::BadJson(_))
    ));
    let form = serde_urlencoded::to_string([("payload", full)]).unwrap();
    assert!(matches!(
        parse_form(form.as_bytes()),
        Ok(Interaction::BreakGlass(_))
    ));
}
