//! Slack interactivity payloads: the form field `payload` holding JSON with a `type`.
//!
//! Two kinds of click start break glass:
//! - the legacy `interactive_message` of the original demo: the account id is the middle of
//!   `callback_id` (`<prefix>_<12 digits>_<suffix>`), the permission set ARN is the `value` of
//!   the clicked action named `break_glass`;
//! - a Block Kit `block_actions` click on a button with `action_id` `break_glass`: the account id
//!   is the middle of the button's `block_id` (same shape as `callback_id`), the permission set
//!   ARN is its `value`.
//!
//! Everything here is untrusted: the policy decides, never the message.

use serde::Deserialize;

use crate::domain::{AccountId, PermissionSetArn};

/// The `action_id` (Block Kit) or action `name` (legacy) of the Break Glass button.
pub const BREAK_GLASS_ACTION: &str = "break_glass";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("the body has no `payload` form field")]
    MissingPayload,
    #[error("the payload is not valid JSON: {0}")]
    BadJson(String),
    #[error("unsupported payload type {0:?}")]
    UnknownType(String),
    #[error("{field}: {problem}")]
    BadField {
        field: &'static str,
        problem: String,
    },
}

fn bad(field: &'static str, problem: impl Into<String>) -> PayloadError {
    PayloadError::BadField {
        field,
        problem: problem.into(),
    }
}

/// A Break Glass click, reduced to what the rest of the system needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    pub team_id: String,
    pub api_app_id: Option<String>,
    pub user_id: String,
    pub channel_id: Option<String>,
    /// The message the button is in (`message_ts`); identifies the click for de-duplication.
    pub message_ts: Option<String>,
    pub action_ts: String,
    pub account_id: AccountId,
    pub permission_set_arn: PermissionSetArn,
    pub response_url: Option<String>,
}

/// The `action_id`s of the buttons on the "access granted" message; their value is the
/// request id.
pub const END_ACCESS_ACTION: &str = "end_access";
pub const EXTEND_ACCESS_ACTION: &str = "extend_access";
/// The `action_id`s of the review message's buttons; their value is the request id.
pub const REVIEW_OK_ACTION: &str = "review_ok";
pub const REVIEW_FOLLOW_UP_ACTION: &str = "review_follow_up";
/// The `callback_id` of the follow-up note's modal (its `private_metadata` is the request id).
pub const REVIEW_NOTE_CALLBACK: &str = "review_note";
/// The `callback_id` of the slash command's modal.
pub const MODAL_CALLBACK: &str = "break_glass_request";

/// Where a request came from in Slack: enough to check the workspace and to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub team_id: String,
    pub api_app_id: Option<String>,
    pub user_id: String,
}

/// `/break-glass` (form-encoded slash command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub origin: Origin,
    pub trigger_id: String,
    pub channel_id: Option<String>,
}

/// The modal's submission, values as the user chose them (untrusted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub origin: Origin,
    pub view_id: String,
    pub account: Option<String>,
    pub permission_set: Option<String>,
    pub duration: Option<String>,
    pub reason: Option<String>,
    pub private_metadata: String,
}

/// A click on **End access now** or **Extend**.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseClick {
    pub origin: Origin,
    pub extend: bool,
    /// The button's value: supposedly a request id (checked by the caller).
    pub request_id: String,
    /// Slack's id of this click: the same click delivered twice has the same one.
    pub action_ts: String,
    pub response_url: Option<String>,
}

/// A click on **Reviewed — fine** or **Needs follow-up**.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewClick {
    pub origin: Origin,
    pub follow_up: bool,
    /// The button's value: supposedly a request id (checked by the caller).
    pub request_id: String,
    /// For the follow-up note's modal.
    pub trigger_id: Option<String>,
}

/// The follow-up note's modal, submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewNote {
    pub origin: Origin,
    /// The modal's `private_metadata`: supposedly a request id (checked by the caller).
    pub request_id: String,
    pub note: Option<String>,
}

/// What an interactivity request asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    BreakGlass(Click),
    Command(Command),
    Submission(Submission),
    Lease(LeaseClick),
    Review(ReviewClick),
    ReviewNote(ReviewNote),
    /// The Events API's handshake: answer with the challenge.
    UrlVerification {
        challenge: String,
    },
    /// `app_home_opened` on the Home tab: publish the user's Home view.
    HomeOpened(Origin),
    /// A click on some other button of the same message (the seed's "Retry"): not ours.
    Ignored {
        team_id: String,
        api_app_id: Option<String>,
    },
}

impl Interaction {
    /// What kind of interaction this is, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Interaction::BreakGlass(_) => "break_glass",
            Interaction::Command(_) => "command",
            Interaction::Submission(_) => "submission",
            Interaction::Lease(l) if l.extend => "extend_access",
            Interaction::Lease(_) => "end_access",
            Interaction::Review(r) if r.follow_up => "review_follow_up",
            Interaction::Review(_) => "review_ok",
            Interaction::ReviewNote(_) => "review_note",
            Interaction::UrlVerification { .. } => "url_verification",
            Interaction::HomeOpened(_) => "app_home_opened",
            Interaction::Ignored { .. } => "ignored",
        }
    }

    /// The Slack user who acted (none for a click that is not ours).
    pub fn user_id(&self) -> &str {
        match self {
            Interaction::BreakGlass(c) => &c.user_id,
            Interaction::Command(c) => &c.origin.user_id,
            Interaction::Submission(s) => &s.origin.user_id,
            Interaction::Lease(l) => &l.origin.user_id,
            Interaction::Review(r) => &r.origin.user_id,
            Interaction::ReviewNote(n) => &n.origin.user_id,
            Interaction::HomeOpened(o) => &o.user_id,
            Interaction::UrlVerification { .. } | Interaction::Ignored { .. } => "",
        }
    }

    pub fn team_and_app(&self) -> (&str, Option<&str>) {
        let o = match self {
            Interaction::BreakGlass(c) => return (&c.team_id, c.api_app_id.as_deref()),
            Interaction::Ignored {
                team_id,
                api_app_id,
            } => return (team_id, api_app_id.as_deref()),
            Interaction::Command(c) => &c.origin,
            Interaction::Submission(s) => &s.origin,
            Interaction::Lease(l) => &l.origin,
            Interaction::Review(r) => &r.origin,
            Interaction::ReviewNote(n) => &n.origin,
            Interaction::HomeOpened(o) => o,
            // Slack's handshake names no workspace; it is signed all the same.
            Interaction::UrlVerification { .. } => return ("", None),
        };
        (&o.team_id, o.api_app_id.as_deref())
    }
}

/// Parses a form-encoded body: an interactivity `payload`, or a slash command.
pub fn parse_form(body: &[u8]) -> Result<Interaction, PayloadError> {
    let fields = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .map_err(|_| PayloadError::MissingPayload)?;
    let get = |name: &str| {
        fields
            .iter()
            .find_map(|(k, v)| (k == name).then_some(v.as_str()))
    };
    if let Some(payload) = get("payload") {
        return parse_payload(payload);
    }
    let Some(command) = get("command") else {
        return Err(PayloadError::MissingPayload);
    };
    if command != "/break-glass" {
        return Err(PayloadError::UnknownType(
            crate::domain::truncate(command, 40).to_owned(),
        ));
    }
    let required = |name: &'static str| {
        get(name)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| bad(name, "missing"))
    };
    Ok(Interaction::Command(Command {
        origin: Origin {
            team_id: required("team_id")?,
            api_app_id: get("api_app_id").map(str::to_owned),
            user_id: required("user_id")?,
        },
        trigger_id: required("trigger_id")?,
        channel_id: get("channel_id").map(str::to_owned),
    }))
}

/// Parses an Events API request (JSON): the `url_verification` handshake, or an
/// `event_callback` whose event is `app_home_opened` on the Home tab; any other event is
/// ignored (answered 200, so that Slack does not retry it).
pub fn parse_event(json: &[u8]) -> Result<Interaction, PayloadError> {
    #[derive(Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Envelope {
        UrlVerification {
            challenge: String,
        },
        EventCallback {
            team_id: String,
            api_app_id: Option<String>,
            event: Event,
        },
        #[serde(other)]
        Other,
    }
    #[derive(Deserialize)]
    struct Event {
        #[serde(rename = "type")]
        kind: String,
        user: Option<String>,
        tab: Option<String>,
    }
    let envelope: Envelope =
        serde_json::from_slice(json).map_err(|e| PayloadError::BadJson(e.to_string()))?;
    match envelope {
        Envelope::UrlVerification { challenge } => {
            if challenge.is_empty() || challenge.len() > 512 {
                return Err(bad("challenge", "empty or too long"));
            }
            Ok(Interaction::UrlVerification { challenge })
        }
        Envelope::EventCallback {
            team_id,
            api_app_id,
            event,
        } => match (event.kind.as_str(), event.tab.as_deref(), event.user) {
            ("app_home_opened", Some("home"), Some(user)) if !user.is_empty() => {
                Ok(Interaction::HomeOpened(Origin {
                    team_id,
                    api_app_id,
                    user_id: user,
                }))
            }
            _ => Ok(Interaction::Ignored {
                team_id,
                api_app_id,
            }),
        },
        Envelope::Other => Err(PayloadError::UnknownType(peek_type(
            std::str::from_utf8(json).unwrap_or_default(),
        ))),
    }
}

/// Parses the JSON of the `payload` field.
pub fn parse_payload(json: &str) -> Result<Interaction, PayloadError> {
    let raw: RawPayload = serde_json::from_str(json).map_err(|e| {
        // serde's message for an unknown tag names the tag; keep it out of the JSON error.
        PayloadError::BadJson(e.to_string())
    })?;
    match raw {
        RawPayload::InteractiveMessage(p) => p.into_interaction(),
        RawPayload::BlockActions(p) => p.into_interaction(),
        RawPayload::ViewSubmission(p) => p.into_interaction(),
        RawPayload::Other => Err(PayloadError::UnknownType(peek_type(json))),
    }
}

fn peek_type(json: &str) -> String {
    #[derive(Deserialize)]
    struct T {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    serde_json::from_str::<T>(json)
        .ok()
        .and_then(|t| t.kind)
        .map(|k| crate::domain::truncate(&k, 40).to_owned())
        .unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RawPayload {
    InteractiveMessage(Legacy),
    BlockActions(Blocks),
    ViewSubmission(ViewSubmission),
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Id {
    id: String,
}

#[derive(Deserialize)]
struct Legacy {
    actions: Vec<LegacyAction>,
    callback_id: String,
    team: Id,
    user: Id,
    channel: Option<Id>,
    action_ts: String,
    message_ts: Option<String>,
    response_url: Option<String>,
    api_app_id: Option<String>,
}

#[derive(Deserialize)]
struct LegacyAction {
    name: String,
    value: Option<String>,
}

impl Legacy {
    fn into_interaction(self) -> Result<Interaction, PayloadError> {
        // Slack sends exactly the clicked action in `actions`.
        let [action] = self.actions.as_slice() else {
            return Err(bad("actions", "expected exactly the clicked action"));
        };
        if action.name != BREAK_GLASS_ACTION {
            return Ok(Interaction::Ignored {
                team_id: self.team.id,
                api_app_id: self.api_app_id,
            });
        }
        let value = action.value.as_deref().unwrap_or_default();
        Ok(Interaction::BreakGlass(Click {
            account_id: account_from_id("callback_id", &self.callback_id)?,
            permission_set_arn: PermissionSetArn::parse(value)
                .map_err(|e| bad("actions[0].value", e.to_string()))?,
            team_id: self.team.id,
            api_app_id: self.api_app_id,
            user_id: self.user.id,
            channel_id: self.channel.map(|c| c.id),
            message_ts: self.message_ts,
            action_ts: self.action_ts,
            response_url: self.response_url,
        }))
    }
}

#[derive(Deserialize)]
struct Blocks {
    actions: Vec<BlockAction>,
    team: Id,
    user: Id,
    channel: Option<Id>,
    container: Option<Container>,
    response_url: Option<String>,
    api_app_id: Option<String>,
    trigger_id: Option<String>,
}

#[derive(Deserialize)]
struct BlockAction {
    action_id: String,
    block_id: Option<String>,
    value: Option<String>,
    action_ts: String,
}

#[derive(Deserialize)]
struct Container {
    message_ts: Option<String>,
}

impl Blocks {
    fn into_interaction(self) -> Result<Interaction, PayloadError> {
        let [action] = self.actions.as_slice() else {
            return Err(bad("actions", "expected exactly the clicked action"));
        };
        if action.action_id == END_ACCESS_ACTION || action.action_id == EXTEND_ACCESS_ACTION {
            return Ok(Interaction::Lease(LeaseClick {
                extend: action.action_id == EXTEND_ACCESS_ACTION,
                request_id: action.value.clone().unwrap_or_default(),
                action_ts: action.action_ts.clone(),
                response_url: self.response_url,
                origin: Origin {
                    team_id: self.team.id,
                    api_app_id: self.api_app_id,
                    user_id: self.user.id,
                },
            }));
        }
        if action.action_id == REVIEW_OK_ACTION || action.action_id == REVIEW_FOLLOW_UP_ACTION {
            return Ok(Interaction::Review(ReviewClick {
                follow_up: action.action_id == REVIEW_FOLLOW_UP_ACTION,
                request_id: action.value.clone().unwrap_or_default(),
                trigger_id: self.trigger_id,
                origin: Origin {
                    team_id: self.team.id,
                    api_app_id: self.api_app_id,
                    user_id: self.user.id,
                },
            }));
        }
        if action.action_id != BREAK_GLASS_ACTION {
            return Ok(Interaction::Ignored {
                team_id: self.team.id,
                api_app_id: self.api_app_id,
            });
        }
        let block_id = action.block_id.as_deref().unwrap_or_default();
        let value = action.value.as_deref().unwrap_or_default();
        Ok(Interaction::BreakGlass(Click {
            account_id: account_from_id("block_id", block_id)?,
            permission_set_arn: PermissionSetArn::parse(value)
                .map_err(|e| bad("actions[0].value", e.to_string()))?,
            team_id: self.team.id,
            api_app_id: self.api_app_id,
            user_id: self.user.id,
            channel_id: self.channel.map(|c| c.id),
            message_ts: self.container.and_then(|c| c.message_ts),
            action_ts: action.action_ts.clone(),
            response_url: self.response_url,
        }))
    }
}

#[derive(Deserialize)]
struct ViewSubmission {
    team: Id,
    user: Id,
    api_app_id: Option<String>,
    view: View,
}

#[derive(Deserialize)]
struct View {
    id: String,
    callback_id: Option<String>,
    #[serde(default)]
    private_metadata: String,
    state: State,
}

#[derive(Deserialize)]
struct State {
    /// block id → action id → element state.
    values: std::collections::HashMap<String, std::collections::HashMap<String, Element>>,
}

#[derive(Deserialize)]
struct Element {
    value: Option<String>,
    selected_option: Option<SelectedOption>,
}

#[derive(Deserialize)]
struct SelectedOption {
    value: String,
}

impl ViewSubmission {
    fn into_interaction(self) -> Result<Interaction, PayloadError> {
        let values = &self.view.state.values;
        let get = |block: &str| {
            values
                .get(block)
                .and_then(|actions| actions.get(block))
                .and_then(|e| {
                    e.selected_option
                        .as_ref()
                        .map(|o| o.value.clone())
                        .or_else(|| e.value.clone())
                        .filter(|v| !v.trim().is_empty())
                })
        };
        let origin = Origin {
            team_id: self.team.id.clone(),
            api_app_id: self.api_app_id.clone(),
            user_id: self.user.id.clone(),
        };
        match self.view.callback_id.as_deref() {
            Some(MODAL_CALLBACK) => {}
            Some(REVIEW_NOTE_CALLBACK) => {
                return Ok(Interaction::ReviewNote(ReviewNote {
                    origin,
                    request_id: self.view.private_metadata.clone(),
                    note: get("note"),
                }));
            }
            _ => {
                return Err(PayloadError::UnknownType(
                    "view_submission of another view".into(),
                ));
            }
        }
        Ok(Interaction::Submission(Submission {
            account: get("account"),
            permission_set: get("permission_set"),
            duration: get("duration"),
            reason: get("reason"),
            view_id: self.view.id,
            private_metadata: self.view.private_metadata,
            origin: Origin {
                team_id: self.team.id,
                api_app_id: self.api_app_id,
                user_id: self.user.id,
            },
        }))
    }
}

/// `<prefix>_<12 digits>_<suffix>`: exactly one inner `_`-separated segment is an account id.
fn account_from_id(field: &'static str, id: &str) -> Result<AccountId, PayloadError> {
    let parts: Vec<&str> = id.split('_').collect();
    let inner = parts
        .get(1..parts.len().saturating_sub(1))
        .unwrap_or_default();
    let mut found = inner.iter().filter_map(|p| AccountId::parse(p).ok());
    match (found.next(), found.next()) {
        (Some(a), None) => Ok(a),
        (Some(_), Some(_)) => Err(bad(field, "more than one account id")),
        (None, _) => Err(bad(
            field,
            "expected <prefix>_<12-digit account id>_<suffix>",
        )),
    }
}

#[cfg(test)]
mod tests {
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
        let Interaction::BreakGlass(c) =
            parse_payload(&seed_click("break_glass", SEED_PS)).unwrap()
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
        assert_eq!(s.account.as_deref(), Some("123456789012"));
        assert_eq!(s.permission_set.as_deref(), Some(SEED_PS));
        assert_eq!(s.duration.as_deref(), Some("1h"));
        assert_eq!(s.reason, None, "a blank reason is no reason");
        assert_eq!(s.view_id, "V1");
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
}
